# ctest fuzz_libfuzzer (cmake -P): builds the loader fuzz targets with clang and libFuzzer in
# a separate build tree (the library instrumented with -fsanitize=fuzzer-no-link,address;
# NNKIT_FUZZ=ON) and runs each for NNKIT_FUZZ_SECONDS on a copy of its committed corpus.
# Inputs: SOURCE_DIR, BINARY_DIR, CLANG, SECONDS.
foreach(v SOURCE_DIR BINARY_DIR CLANG SECONDS)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "run_libfuzzer: ${v} not set")
  endif()
endforeach()
function(run step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " cmd "${ARGN}")
    message(FATAL_ERROR "fuzz_libfuzzer: ${step} failed (${rc})\n$ ${cmd}\n${out}\n${err}")
  endif()
  message(STATUS "${out}")
endfunction()
set(generator)
find_program(NINJA ninja)
if(NINJA)
  set(generator -G Ninja)
endif()
run("configure" ${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${BINARY_DIR}" ${generator} -DCMAKE_BUILD_TYPE=Release
    "-DCMAKE_CXX_COMPILER=${CLANG}" -DNNKIT_FUZZ=ON -DNNKIT_CUDA=OFF -DNNKIT_PARITY=OFF -DNNKIT_BUILD_EXAMPLES=OFF
    -DNNKIT_BUILD_BENCHMARKS=OFF "-DNNKIT_FUZZ_SECONDS=${SECONDS}")
run("build" ${CMAKE_COMMAND} --build "${BINARY_DIR}" --target fuzz_pytorch fuzz_safetensors)
run("fuzz" ${CMAKE_CTEST_COMMAND} --test-dir "${BINARY_DIR}" -L fuzz --output-on-failure)
