// Package discover finds the targets of a scan that answer, before they are probed (SPEC "scan"
// → "Scale and discovery"): the connect stage's Connector, which keeps many cheap TCP
// connection attempts in flight, and ZMap (zmap.go), which sends stateless SYNs and streams the
// addresses that answered. It also reads ZMap's and masscan's output (ReadHits), so that
// `zmap -p 104 ... | pacswatch scan -iL - -p 104` works.
package discover
