# pml_package.cmake — helpers for the installed package: the shared libraries' link checks
# and the link flags their pkg-config files carry. Included by the top-level CMakeLists.txt.

# pml_no_undefined(TARGET) — a shared library must record every library it needs (DT_NEEDED),
# or a program linking it alone fails at its own link: -Wl,--no-undefined makes a missing
# one an error when the library is linked. Not with sanitizers: their runtime comes with the
# executable, so an instrumented library has undefined __asan_* symbols by design.
function(pml_no_undefined target)
  if(NOT PML_SANITIZE)
    target_link_options(${target} PRIVATE -Wl,--no-undefined)
  endif()
endfunction()

# pml_pc_library_flags(VAR LIBRARY_FILE) — appends "-L<folder> -l<name>" for a library found
# by path (/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so: -L… -lopenblas) to
# the list VAR, for a .pc file's Libs.private.
function(pml_pc_library_flags var file)
  get_filename_component(dir ${file} DIRECTORY)
  get_filename_component(name ${file} NAME_WE)
  string(REGEX REPLACE "^lib" "" name ${name})
  set(${var} ${${var}} -L${dir} -l${name} PARENT_SCOPE)
endfunction()

# pml_pc_system_libs(VAR) — appends the system libraries both libraries use, for Libs.private:
# libm, libdl (where dlopen is not in libc's link name) and threads when asked (THREADS).
function(pml_pc_system_libs var)
  set(flags ${${var}})
  if("THREADS" IN_LIST ARGN AND CMAKE_THREAD_LIBS_INIT)
    list(APPEND flags ${CMAKE_THREAD_LIBS_INIT})
  endif()
  list(APPEND flags -lm)
  if(CMAKE_DL_LIBS)
    list(APPEND flags -l${CMAKE_DL_LIBS})
  endif()
  set(${var} ${flags} PARENT_SCOPE)
endfunction()
