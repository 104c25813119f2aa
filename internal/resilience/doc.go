// Package resilience holds pacswatch's whole-system resilience tests, for the SPEC principles
// "bounded against hostile servers" and "nothing lost", and no code that ships. Its tests run the
// scan engine, the DICOM and web probes and the SQLite store in-process against in-process servers
// on loopback addresses (127.0.0.0/8) only:
//
//   - hostile_test.go: hundreds of servers breaking PS3.8/PS3.7 in every way the test SCP knows
//     (dicomtest.Hostile), and HTTP front ends that redirect in loops, send endless or gzip-bomb
//     bodies, trickle or flood headers, or answer TLS with garbage, all in one scan: every target
//     is classified within --max-host-time, and heap and goroutines come back to where they were.
//     A port that drops SYNs is filtered for both probes.
//   - bounds_test.go: a scan's memory is O(concurrency), not O(targets) (a /15 of 131,072 targets
//     against a /18 of 16,384) nor O(stored results) when resuming; one C-FIND streaming
//     1,000,000 pending responses costs the prober a bounded heap.
//   - fuzz_test.go: every package that parses untrusted bytes has a native fuzz target with seeds.
//
// Kill-and-resume, disk-full and read-only-store tests run the pacswatch binary; they live with
// the other binary tests in internal/cli (resume_test.go, robust_test.go).
//
// # Bounds
//
// These are the limits the tests hold pacswatch to; a scan's memory is their sum over the
// --concurrency targets in flight, plus a constant:
//
//   - Scan engine (package scan): at most 2×Concurrency targets between the target iterator and
//     the store, batches of at most 500 results; resuming, a look-ahead of 4×Concurrency+500
//     targets to find the results stored past the checkpoint (doubled only while an earlier run
//     stored some further ahead).
//   - Upper Layer (package ul): a PDU read is at most 1 MiB, a reassembled command or data set at
//     most 4 MiB, one association per probe at a time.
//   - Counting (package dicomprobe): at most 2^20 responses per C-FIND, 2,000 C-FINDs per host,
//     and 2^20 distinct studies per host, each kept as 8 bytes of keyed hash in a map: about
//     44 bytes per study live, so about 45 MiB for a host at the bound. This is the largest
//     per-host cost, and it grows with the distinct studies a host returns, not with responses:
//     --concurrency hostile servers each streaming a million distinct studies could hold that
//     much each, and --concurrency is the knob.
//   - Web probe (package webprobe): response headers at most 64 KiB, bodies at most 1 MiB after
//     gzip decoding, 3 redirects per request, one connection at a time.
package resilience
