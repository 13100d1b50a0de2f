package otlp

// Kind is the OTLP data type of a point: which Metric field it goes under.
type Kind uint8

// The kinds of points.
const (
	// KindSum is a Sum point: Point.Value, with Monotonic and Temporality.
	KindSum Kind = iota + 1
	// KindGauge is a Gauge point: Point.Value.
	KindGauge
	// KindExponentialHistogram is an ExponentialHistogram point:
	// Batch.Histograms[Point.Index], with Temporality.
	KindExponentialHistogram
	// KindSummary is a Summary point: Batch.Summaries[Point.Index].
	KindSummary
)

// Temporality is the aggregation temporality of sums and histograms; its
// values are those of OTLP's AggregationTemporality enum.
type Temporality uint8

// The temporalities.
const (
	// Delta: each point covers (Start, Time] alone.
	Delta Temporality = 1
	// Cumulative: each point covers everything since Start.
	Cumulative Temporality = 2
)

// ScopeName is the name of the instrumentation scope of every request.
const ScopeName = "libratod"

// Attribute is one attribute of a point or of the resource: a key and a
// string value.
type Attribute struct {
	Key, Value string
}

// Resource describes the entity that produced the points: attributes such
// as host.name and service.name.
type Resource struct {
	// Attributes are sent in this order.
	Attributes []Attribute
}

// Point is one data point of one metric. It is a value, not a pointer: a
// period's points live in one slice (Batch.Points), and the variable-sized
// parts of histograms and summaries live in the Batch's arenas, so that a
// batch can be refilled period after period without allocating.
type Point struct {
	// Name is the metric name. Points of the same Name, Kind, Temporality and
	// Monotonic go under one OTLP Metric.
	Name string
	// Attributes of the point (OTLP string attributes). Several points may
	// share one backing array.
	Attributes []Attribute
	// Start is the start of the point's time window in unix nanoseconds; 0
	// leaves it unset.
	Start int64
	// Time is the time of the point in unix nanoseconds.
	Time int64
	// Value is the value of a KindSum or KindGauge point.
	Value float64
	// Index is, for KindExponentialHistogram, an index in Batch.Histograms
	// and, for KindSummary, an index in Batch.Summaries. Unused otherwise.
	Index uint32
	// Kind is the data type of the point.
	Kind Kind
	// Temporality of a KindSum or KindExponentialHistogram point; zero is
	// sent as Delta.
	Temporality Temporality
	// Monotonic says whether a KindSum point never decreases.
	Monotonic bool
}

// Span is a range [Off, Off+Len) of one of a Batch's arenas.
type Span struct {
	Off, Len uint32
}

// Buckets are the buckets of one sign of an exponential histogram: the
// count of bucket Offset+i is Batch.Counts[Counts.Off+i].
type Buckets struct {
	// Offset is the index of the first bucket.
	Offset int32
	// Counts is the range of Batch.Counts holding the bucket counts.
	Counts Span
}

// ExponentialHistogram is the data of one exponential histogram point (see
// the OTLP data model): bucket i at Scale covers (base^i, base^(i+1)], base =
// 2^(2^-Scale), for the magnitude of the values of its sign; exact zeros are
// counted in ZeroCount.
type ExponentialHistogram struct {
	// Count is the number of values: ZeroCount plus every bucket count.
	Count uint64
	// Sum is the sum of the values.
	Sum float64
	// Min and Max are the smallest and largest values; sent when Count > 0.
	Min, Max float64
	// Scale sets the bucket base.
	Scale int32
	// ZeroCount is the number of zero values.
	ZeroCount uint64
	// Positive and Negative are the buckets of the positive values and of
	// the magnitudes of the negative values.
	Positive, Negative Buckets
}

// Quantile is one quantile of a summary.
type Quantile struct {
	// Quantile is in [0, 1].
	Quantile float64
	// Value is the value at that quantile.
	Value float64
}

// Summary is the data of one summary point.
type Summary struct {
	// Count is the number of values.
	Count uint64
	// Sum is the sum of the values.
	Sum float64
	// Quantiles is the range of Batch.Quantiles holding the quantiles.
	Quantiles Span
}

// Batch is the points of one resource for one request or period, with the
// arenas their histograms and summaries refer to. Reset keeps its memory.
type Batch struct {
	// Resource is the resource every point belongs to.
	Resource Resource
	// ScopeVersion is the version of the instrumentation scope (ScopeName),
	// e.g. libratod's version.
	ScopeVersion string
	// Points are the data points.
	Points []Point
	// Histograms holds the data of KindExponentialHistogram points.
	Histograms []ExponentialHistogram
	// Summaries holds the data of KindSummary points.
	Summaries []Summary
	// Counts is the arena of histogram bucket counts.
	Counts []uint64
	// Quantiles is the arena of summary quantiles.
	Quantiles []Quantile
}

// Reset empties b's points and arenas, keeping their memory and the
// resource.
func (b *Batch) Reset() {
	b.Points = b.Points[:0]
	b.Histograms = b.Histograms[:0]
	b.Summaries = b.Summaries[:0]
	b.Counts = b.Counts[:0]
	b.Quantiles = b.Quantiles[:0]
}

// AddSummary appends a KindSummary point for p (its Kind and Index are set
// here) with count, sum and quantiles, which are copied.
func (b *Batch) AddSummary(p Point, count uint64, sum float64, quantiles []Quantile) {
	off := len(b.Quantiles)
	b.Quantiles = append(b.Quantiles, quantiles...)
	p.Kind = KindSummary
	p.Index = uint32(len(b.Summaries))
	b.Summaries = append(b.Summaries, Summary{
		Count:     count,
		Sum:       sum,
		Quantiles: Span{Off: uint32(off), Len: uint32(len(quantiles))},
	})
	b.Points = append(b.Points, p)
}

// counts returns the bucket counts of s.
func (b *Batch) counts(s Span) []uint64 {
	return b.Counts[s.Off : s.Off+s.Len]
}

// quantiles returns the quantiles of s.
func (b *Batch) quantiles(s Span) []Quantile {
	return b.Quantiles[s.Off : s.Off+s.Len]
}
