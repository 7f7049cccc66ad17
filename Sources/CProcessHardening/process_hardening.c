// prctl is variadic in C, so Swift cannot call it: this file is the whole of the C side.
#include "process_hardening.h"
#include <sys/prctl.h>
#include <sys/resource.h>

int fieldbook_disable_core_dumps(void) {
    struct rlimit none = {0, 0};
    int rc = setrlimit(RLIMIT_CORE, &none);
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) rc = -1;
    return rc;
}

int fieldbook_is_dumpable(void) {
    return prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
}
