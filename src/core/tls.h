#pragma once
// NNKIT_TLS: for nnkit's own hot thread_locals (grad mode, the block cache, the module call
// stack). The initial-exec model reads them with one instruction instead of a call to
// __tls_get_addr, which the default model needs in a shared library (~5% of a tiny op).
// It takes a little of the static TLS block, which is fine for a library linked at startup and
// also for one loaded with dlopen (glibc keeps spare static TLS for that).
#if defined(__GNUC__) && !defined(__SANITIZE_ADDRESS__)
#define NNKIT_TLS __attribute__((tls_model("initial-exec")))
#else
#define NNKIT_TLS
#endif
