// Package spool is a durable, bounded, on-disk FIFO of opaque records: the
// requests libratod could not deliver yet, kept so that they survive a
// restart or a crash and are resent, oldest first.
//
// A Spool owns one directory, locked with flock(2) on Dir/lock so that a
// second process (or a second Open) fails with ErrLocked rather than
// resend the same data. Records (an opaque payload and the metadata a
// caller needs to replay and account for it: the time of its period, its
// number of measurements, a caller-defined kind) are appended to segment
// files (000000001.spool, ...), each record framed with a magic, its
// length and a CRC32-C checksum. Take returns the oldest records not yet
// taken; Ack removes a delivered record for good (an 8-byte entry in the
// segment's .ack file; a segment whose records are all acknowledged is
// deleted with its .ack file); Release gives a record back to be taken
// again. Open indexes what earlier processes left unacknowledged and Take
// returns it first. Nothing is written until the first Append: a spool
// that is never needed stays an empty directory with a lock file.
//
// # What survives what
//
// A record is "handed to the spool" when Append returns nil.
//
//   - Clean stop (SIGTERM, then Close): every record handed to the spool
//     and not acknowledged is read back by the next Open, including the
//     records taken and not yet acknowledged (in flight) at Close.
//   - The process killed at any moment (kill -9, OOM killer, panic): the
//     same. Append and Ack return only after write(2) has put the data in
//     the kernel's page cache, which outlives the process. A record being
//     written at the moment of the kill is either whole or a torn tail that
//     the next Open detects by its checksum, skips and counts; the records
//     before and after it are read.
//   - Power loss or kernel crash: with the default policy Append also
//     fsyncs the segment (and the directory when it creates a segment), so
//     every record handed to the spool survives. With Config.NoSync only
//     what the kernel had written back survives (Linux writes dirty pages
//     back within about 30 s; Sync forces it); a record cut by the crash is
//     detected and skipped. Acknowledgements and segment removals are never
//     fsynced: after a power loss some delivered records may come back and
//     be sent again.
//   - Disk full (ENOSPC), an unwritable or vanished directory, any write
//     error: Append returns an error wrapping ErrWrite and the cause, at
//     once (no retries inside), and leaves no part of the record behind
//     (the segment is truncated back); the records already stored are not
//     affected. The caller keeps the record elsewhere (memory). A failed
//     acknowledgement (Ack returns an error, counted in Stats.AckErrors)
//     only means the record may be sent again after a restart.
//   - Damage (a flipped bit, a truncated file): each record carries a
//     CRC32-C; damaged bytes are skipped up to the next valid record and
//     counted (Stats.CorruptRecords, Stats.CorruptBytes). A damaged .ack
//     entry is ignored, so its record is sent again; a torn one (the
//     process killed while writing it) is trimmed by Open, and the entries
//     after it count all the same.
//   - A segment file that cannot be opened or read at Take (too many
//     open files, EIO, a network file system's hiccup): nothing is lost.
//     Take returns an error wrapping ErrRead, counts it
//     (Stats.ReadErrors) and leaves that file's records for a later Take;
//     the records of the other segments are taken meanwhile.
//   - Past Config.MaxBytes: Append removes the oldest whole segments first
//     and counts their records under ReasonFull.
//
// Delivery is therefore at least once, not exactly once: a record whose
// request Librato took but whose Ack did not happen (a crash between the
// answer and Ack, a lost answer, a power loss after Ack) is sent again.
//
// Nothing inside the spool retries or waits: Append costs one write(2)
// and, unless NoSync, one fsync(2) (0.3-3 ms for a 40 KB request on the
// development machine; a stalled disk can make an fsync, which cannot be
// interrupted, take much longer). All methods share one mutex.
//
// The index of the records (about 24 bytes each) is kept in memory;
// payloads stay on disk until Take. Open reads every segment once (about
// 0.15-0.5 s for 1,000,000 measurements in 134 MB, BenchmarkReplay).
package spool
