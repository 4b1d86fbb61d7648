/* What bindgen cannot wrap: macros and per-lcore thread-locals. */
#ifndef DPDK_SYS_SHIM_H
#define DPDK_SYS_SHIM_H
#include <stdint.h>
struct rte_mbuf;
/* rte_errno is a macro over the TLS variable per_lcore__rte_errno. */
int shim_rte_errno(void);
/* rte_pktmbuf_mtod is a macro: buf_addr + data_off. */
void *shim_rte_pktmbuf_mtod(struct rte_mbuf *m);
#endif
