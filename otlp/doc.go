// Package otlp is libratod's OTLP/HTTP metrics output: the data model of a
// period's points, their encoding as an ExportMetricsServiceRequest in
// protobuf and in OTLP/JSON (for -dry-run), an exponential histogram built
// from StatsD timer values, and a Client that POSTs one encoded request and
// classifies the answer. It does not retry, batch or spool: the caller owns
// delivery, as with package librato. It imports no other libratod package.
//
// # Design
//
// Encoding uses google.golang.org/protobuf/encoding/protowire, not the
// generated go.opentelemetry.io/proto/otlp types or the collector's pdata:
// those build a tree of heap objects per point (a message, its attributes
// and their values), which for a flush of a million series means millions
// of allocations and a second copy of the data; pdata pulls in the
// collector's module graph; and the generated ExportMetricsServiceRequest
// lives in the collector/metrics/v1 package, which also links grpc and
// grpc-gateway into the binary. Here the points stay in flat, reusable
// slices (Batch: points by value, histogram buckets and summary quantiles
// in shared arenas referenced by ranges), and an Encoder appends the wire
// bytes into a reused buffer without allocating. Every message's size is
// computed before it is written, so each length is one minimal varint. The
// tests decode every request with the upstream generated types (MetricsData
// is wire-identical to the request) and protojson.
//
// Mapping choices made here:
//   - every attribute is a string attribute; the instrumentation scope is
//     "libratod" with the caller's version;
//   - points of the same name, kind, temporality and monotonicity go under
//     one Metric; Metrics come sorted by that key;
//   - an unset temporality is sent as delta;
//   - start_time_unix_nano is left out when zero; a histogram always
//     carries sum, min and max; the zero bucket holds exact zeros only
//     (zero_threshold 0);
//   - a point with a NaN or infinite number is refused (left out and listed
//     by Encoder.Refused), not sent: OTLP allows them, but backends differ
//     and Librato refused them too;
//   - invalid UTF-8 in a name, key or value becomes U+FFFD (protobuf
//     decoders reject a whole request holding an invalid string).
//
// # Histogram error bound
//
// HistogramBuilder counts values at scale 6: bucket i holds magnitudes in
// (2^(i/64), 2^((i+1)/64)], and its midpoint is within (2^(1/64)-1) /
// (2^(1/64)+1) = 0.54% of every value in it. Up to 4096 buckets per sign
// cover a spread of 2^64 between the smallest and largest magnitude of a
// sign; a wider spread lowers the scale by one per doubling of that spread
// in powers of two, doubling the bound (1.08% at scale 5, 2.17% at 4). A
// weighted count (sampled values) scales every bucket by the same factor,
// rounded by largest remainder: each bucket is within 1 of its exact scaled
// count, and the buckets add up exactly to the count sent.
package otlp
