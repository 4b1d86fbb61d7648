-- pktgen-dpdk script: the `dataplane pktgen` traffic shape on a real NIC (port 0 towards the
-- balancer's NIC, port 1 receives its IPIP output towards the backends if cabled back).
-- usage: pktgen -l 0-4 -n 4 -a <PCI0> -a <PCI1> -- -P -m "[1:2].0,[3:4].1" -f perf/pktgen-dpdk/lb-tunnel.lua
-- Edit VIP, the balancer's MAC and the flow count (source address range x source port range).
package.path = package.path .. ";?.lua;test/?.lua;app/?.lua;"
require "Pktgen"

local VIP      = "198.18.0.100"
local LB_MAC   = "02:00:00:00:00:01"   -- the balancer NIC's MAC
local SRC_MIN  = "10.0.0.1"
local SRC_MAX  = "10.0.0.16"           -- 16 addresses x 62500 ports = 1 M flows
local SIZE     = 64                    -- FCS included, as in `dataplane pktgen --size`
local SECONDS  = 30

pktgen.set_mac("0", "dst", LB_MAC)
pktgen.set_ipaddr("0", "dst", VIP)
pktgen.set_proto("0", "tcp")
pktgen.set("0", "size", SIZE)
pktgen.set("0", "rate", 100)           -- percent of line rate; lower it to find the no-drop rate
pktgen.set_range("0", "on")
pktgen.dst_mac("0", "start", LB_MAC)
pktgen.dst_ip("0", "start", VIP)
pktgen.dst_ip("0", "inc", "0.0.0.0")
pktgen.dst_ip("0", "min", VIP)
pktgen.dst_ip("0", "max", VIP)
pktgen.src_ip("0", "start", SRC_MIN)
pktgen.src_ip("0", "inc", "0.0.0.1")
pktgen.src_ip("0", "min", SRC_MIN)
pktgen.src_ip("0", "max", SRC_MAX)
pktgen.dst_port("0", "start", 80)
pktgen.dst_port("0", "inc", 0)
pktgen.dst_port("0", "min", 80)
pktgen.dst_port("0", "max", 80)
pktgen.src_port("0", "start", 1024)
pktgen.src_port("0", "inc", 1)
pktgen.src_port("0", "min", 1024)
pktgen.src_port("0", "max", 63523)
pktgen.pkt_size("0", "start", SIZE)
pktgen.pkt_size("0", "inc", 0)
pktgen.pkt_size("0", "min", SIZE)
pktgen.pkt_size("0", "max", SIZE)

pktgen.clr()
pktgen.start("0")
pktgen.delay(SECONDS * 1000)
pktgen.stop("0")
pktgen.delay(1000)
local s = pktgen.portStats("all", "port")
printf("port0 tx %d pkts, port1 rx %d pkts\n", s[0].opackets, s[1].ipackets)
