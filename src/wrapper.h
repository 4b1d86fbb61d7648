/* Headers bound by bindgen (see build.rs). Keep this list minimal: every header here adds
 * wrappers to static_fns.c and seconds to the build. */
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_lcore.h>
#include <rte_launch.h>
#include <rte_ring.h>
#include <rte_cycles.h>
#include <rte_prefetch.h>
#include <rte_version.h>
