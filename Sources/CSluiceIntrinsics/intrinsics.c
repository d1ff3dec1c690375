// The intrinsics are static inline functions in the header; a C target needs one source file.
#include "sluice_intrinsics.h"
