# fedtrack_library(<name> <sources>...)
# Declares the real target fedtrack_<name> with its alias fedtrack::<name>,
# exported as fedtrack::<name> in its own export set: the package component
# <name> (cmake/fedtrackConfig.cmake.in says what each component finds). The
# calling module's include/ folder holds its public (installed) headers; its
# src/ folder is a private include path for the headers only the module uses.
# Link dependencies with target_link_libraries afterwards: PRIVATE unless
# their types appear in a public header; a header-only PRIVATE dependency as
# $<BUILD_INTERFACE:...>, so a static library's users need not find it.
function(fedtrack_library name)
  add_library(fedtrack_${name} ${ARGN})
  add_library(fedtrack::${name} ALIAS fedtrack_${name})
  set_target_properties(fedtrack_${name} PROPERTIES EXPORT_NAME ${name} OUTPUT_NAME fedtrack_${name})
  target_compile_features(fedtrack_${name} PUBLIC cxx_std_17)
  target_include_directories(fedtrack_${name}
    PUBLIC
      $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
      $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>
    PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  install(TARGETS fedtrack_${name} EXPORT fedtrack_${name}Targets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(EXPORT fedtrack_${name}Targets
    NAMESPACE fedtrack::
    FILE fedtrack_${name}Targets.cmake
    DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/fedtrack)
endfunction()
