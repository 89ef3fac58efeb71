#include "farm/common.h"
#ifdef _OPENMP
#include <omp.h>
#endif

namespace farm {
static thread_local int tl_threads = 1;
void set_num_threads(int n) {
  FARM_CHECK(n >= 1 && n <= 1024, "threads must be in [1, 1024], got ", n);
  tl_threads = n;
#ifdef _OPENMP
  omp_set_num_threads(n);
#endif
}
int num_threads() { return tl_threads; }
}  // namespace farm
