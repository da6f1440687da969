# Shared CMake helpers.

# frakti_test(NAME <name> SOURCES <files...> [LIBS <targets...>] [LABELS <labels...>])
#
# Builds one Catch2 test executable and registers it with ctest. Labels route tests:
#   unit  - no root, no KVM (the default when no label is given)
#   kvm   - needs /dev/kvm; tools/check runs these inside tools/kvmbox when the host lacks it
#   root  - needs root (network namespaces, mounts, runc)
function(frakti_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE frakti_catch_main ${T_LIBS})
  add_test(NAME ${T_NAME} COMMAND ${T_NAME} --reporter compact --use-colour no)
  set_tests_properties(${T_NAME} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "FRAKTI_SOURCE_DIR=${PROJECT_SOURCE_DIR};FRAKTI_BUILD_DIR=${PROJECT_BINARY_DIR}")
endfunction()
