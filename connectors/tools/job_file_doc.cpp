// Prints docs/job-file.md, the job-file reference generated from the job
// schema (fedtrack/connectors/job_schema.h), to stdout or to the file named
// by its argument. Regenerate the committed file with
// `cmake --build build --target job-file-doc`.
#include <fstream>
#include <iostream>

#include "fedtrack/connectors/job_schema.h"

int main(int argc, char** argv) {
  if (argc > 2) {
    std::cerr << "usage: fedtrack_job_doc [OUTPUT.md]\n";
    return 2;
  }
  if (argc == 1) {
    std::cout << fedtrack::job_file_markdown();
    return std::cout.good() ? 0 : 1;
  }
  std::ofstream out(argv[1], std::ios::binary | std::ios::trunc);
  out << fedtrack::job_file_markdown();
  out.close();
  if (!out) {
    std::cerr << "fedtrack_job_doc: cannot write " << argv[1] << "\n";
    return 1;
  }
  return 0;
}
