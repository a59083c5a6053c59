# fedtrack_library(<name> <sources>...)
# Declares the real target fedtrack_<name> with its alias fedtrack::<name>,
# exported as fedtrack::<name>, with the calling module's include/ folder as its
# public headers. Link dependencies with target_link_libraries afterwards.
function(fedtrack_library name)
  add_library(fedtrack_${name} ${ARGN})
  add_library(fedtrack::${name} ALIAS fedtrack_${name})
  set_target_properties(fedtrack_${name} PROPERTIES EXPORT_NAME ${name} OUTPUT_NAME fedtrack_${name})
  target_include_directories(fedtrack_${name} PUBLIC
    $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  install(TARGETS fedtrack_${name} EXPORT fedtrackTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
endfunction()
