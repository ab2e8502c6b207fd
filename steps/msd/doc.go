// Package msd implements the fetch-msd step: it brings one Medical
// Segmentation Decathlon task archive from S3 onto a host, verified and
// extracted, as <dest>/TaskNN_Name.
//
// On the local host the fetch runs in-process: parallel ranged GETs
// (concurrency × part_size_mib, into recycled buffers) are put back in order
// and fed at the same time to an MD5 and to a tar extractor, so download,
// checksum and extraction overlap and every byte is written to disk once,
// files of 1 MiB and more with direct I/O (see direct.go for why).
// Extraction goes to a staging directory that is renamed into place only
// after the MD5 matched, and a marker file with that MD5 makes the next run
// skip the step. Entries that would land outside dest (.. or absolute names,
// links pointing out, files written through symlinks) fail the step; macOS
// ._* files are skipped. The public buckets are read anonymously; the
// endpoint comes from the SDK configuration (AWS_ENDPOINT_URL_S3, ...), with
// path-style addressing for custom endpoints.
//
// Resuming. The staging directory is itself the resume state: a small
// journal next to it (.gpipe-msd-<task>.resume.json, rewritten every 64 MiB
// at a file boundary, off the critical path, and once more when the fetch
// fails or is interrupted) records the archive offset of a tar header before
// which everything is extracted, the MD5 state at the part holding that
// offset (crypto/md5 can save and restore its state) and what the
// extractor's safety checks know of the entries before it. A rerun downloads
// from that part on, hashes from there, extracts from the header on (each
// replayed entry replaces what an interrupted run left at its name, and
// symlinks the journal does not know are removed first). After a failed GET
// or Ctrl-C the journal is written up to the last whole file, so little is
// fetched twice; after kill -9, what followed the last periodic write. An earlier version spooled every part
// to a .partial directory and extracted it too: that wrote each byte twice,
// and on the benchmark machine writing into fresh page cache costs nearly as
// much CPU as the MD5 itself. Extracted files are not fsynced (tar -x does
// not either, and per-file fsync puts the disk on the critical path), so
// they survive a killed process but not a crashed machine: the journal
// records the boot id (/proc/sys/kernel/random/boot_id) and one from another
// boot, or a staging dir missing a file the journal lists, makes the fetch
// start over. Where no boot id can be read (not Linux), no journal is kept.
// A wrong MD5, a hostile entry or an object whose ETag changed discards the
// staging dir and the journal.
//
// Performance (issue 5). MD5 is sequential and is the floor (crypto/md5:
// 1.45 CPU seconds per GiB here); everything else overlaps it, and on a
// loaded machine wall time follows CPU time, so what else runs must be cheap
// too: gpipe uses about 1.9 CPU seconds per GiB (MD5, socket reads, direct
// writes), versitygw 0.5 to serve it. `bench/fetch-msd.sh 1024 5` (1 GiB
// archive of incompressible 16 MiB files in a local versitygw, 2 cores
// shared with other work, medians of 5 alternating rounds):
//
//	                      load 3-4          load 4-6
//	gpipe                 1.67 s            2.07 s
//	md5sum (page cache)   1.60 s  (1.04x)   1.76 s  (1.18x)
//	aws s3 cp + md5sum    6.71 s  (4.0x)    7.87 s  (3.8x)
//	  + tar -xf
//	aws s3 cp - | tee     5.03 s  (3.0x)    5.51 s  (2.7x)
//	plain GetObject       0.69 s            0.80 s
//
// Before this design (a .partial spool of every part, then extraction with
// 32 KiB page-cache writes: 2 GiB written per GiB, 3.9 CPU seconds), the
// same script (BENCH_GPIPE_BIN=<old build>, 3 rounds, load 4-6) measured
// gpipe 2.97 s: 1.44x md5sum, the AWS CLI file pipeline 2.45x slower.
//
// On a remote (SSM) host the instance downloads with the AWS CLI, streaming
// `aws s3 cp s3://... - | tee FIFO | tar -x` with md5sum reading the FIFO, into
// the same staging-then-rename layout with the same marker. We chose the CLI
// over running the gpipe binary as a remote agent because the host has the CLI
// (prepare-host installs it where the image lacks it) and the instance role's
// credentials, whereas an agent
// would first need a gpipe build for the instance's OS and architecture
// uploaded to a bucket the instance can read, plus a version handshake —
// moving parts whose failure would cost a $13/hour instance's time. On a
// dl1.24xlarge (100 Gbps, 96 vCPUs) the CLI's single stream is not the
// bottleneck for a 7.6 GB archive: MD5 (sequential) and extraction are, and
// the pipeline overlaps them as the in-process path does. What the CLI path
// gives up is resuming a partial download; a failed fetch there restarts.
package msd
