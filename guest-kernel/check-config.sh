#!/bin/bash
# Check that every option of a config fragment survived into a final kernel .config.
#
# Usage: guest-kernel/check-config.sh FRAGMENT CONFIG
#
# Kconfig silently drops an option whose dependencies are not met, so build.sh runs this
# after `make olddefconfig`. Fragment lines "CONFIG_X=<value>" must appear verbatim in CONFIG;
# lines "# CONFIG_X is not set" must not be =y or =m there. Other lines are ignored. Exits 1
# naming every option that did not survive (with what CONFIG has instead), 2 on bad usage.
set -euo pipefail

[[ $# -eq 2 && -r $1 && -r $2 ]] || { echo "usage: $0 FRAGMENT CONFIG (both readable)" >&2; exit 2; }
fragment=$1 config=$2
missing=()
while IFS= read -r line || [[ -n $line ]]; do
  if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
    name=${BASH_REMATCH[1]} want=${BASH_REMATCH[2]}
    if ! grep -qxF -- "$name=$want" "$config"; then
      got=$(grep -E "^(# )?$name[= ]" "$config" || echo absent)
      missing+=("$name=$want (got: $got)")
    fi
  elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
    name=${BASH_REMATCH[1]}
    if got=$(grep -E "^$name=[ym]$" "$config"); then
      missing+=("$name must be off (got: $got)")
    fi
  fi
done <"$fragment"
if ((${#missing[@]})); then
  echo "guest-kernel: options in $(basename "$fragment") that Kconfig did not keep (missing dependencies?):" >&2
  printf '  %s\n' "${missing[@]}" >&2
  exit 1
fi
echo "guest-kernel: all $(grep -cE '^(CONFIG_|# CONFIG_.* is not set)' "$fragment") options of $(basename "$fragment") are in the final config" >&2
