// How fedtrack writes a number for people and for MLflow params.
#pragma once

#include <string>

namespace fedtrack {

// The shortest decimal that reads back as `d` (std::to_chars' round trip).
// Below 1 laid out as %g does (0.05, 0.0001, 1e-05); from 1 up in whichever
// of fixed and scientific notation is shorter, fixed on a tie: 600, 3600,
// 1e+07 (never %g's 6e+02). scalar_to_string (records.h) writes doubles so.
std::string number_text(double d);

}  // namespace fedtrack
