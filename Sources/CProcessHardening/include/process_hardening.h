#ifndef FIELDBOOK_PROCESS_HARDENING_H
#define FIELDBOOK_PROCESS_HARDENING_H

/// Keeps records, the data key and passphrases out of core files: sets RLIMIT_CORE to 0 (soft
/// and hard) and marks the process not dumpable (PR_SET_DUMPABLE 0, which also keeps other
/// processes of the same user from attaching to it or reading its memory through /proc).
/// Returns 0 when both took effect, else -1 (errno set by the call that failed).
int fieldbook_disable_core_dumps(void);

/// Whether the process is dumpable (PR_GET_DUMPABLE): 0 no, 1 yes, -1 unknown.
int fieldbook_is_dumpable(void);

#endif
