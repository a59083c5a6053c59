#include "malloc_policy.h"

#include <cstdlib>  // defines __GLIBC__ under glibc

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace fedtrack {

void return_large_blocks_to_the_system() {
#if defined(__GLIBC__)
  // Setting the threshold (even to its default) turns off its dynamic
  // adjustment, and the trim threshold's with it.
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  mallopt(M_TRIM_THRESHOLD, 128 * 1024);  // already raised with the mmap threshold when it ratcheted
#endif
}

}  // namespace fedtrack
