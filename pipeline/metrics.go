package pipeline

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names all start with proctor_pipeline_. Collectors are created per
// Producer and Consumer but registered once per registry: a second
// registration of the same metric reuses the first one, so several consumers
// (one per topic) and the producer can share one registry.

type producerMetrics struct {
	messages *prometheus.CounterVec
	bytes    *prometheus.CounterVec
	errors   *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newProducerMetrics(reg prometheus.Registerer) *producerMetrics {
	return &producerMetrics{
		messages: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "proctor_pipeline_produced_messages_total",
			Help: "Messages acknowledged by Kafka, by topic.",
		}, []string{"topic"})),
		bytes: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "proctor_pipeline_produced_bytes_total",
			Help: "Key, value and header bytes of messages acknowledged by Kafka, by topic.",
		}, []string{"topic"})),
		errors: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "proctor_pipeline_produce_errors_total",
			Help: "Messages whose Send failed (not acknowledged), by topic.",
		}, []string{"topic"})),
		latency: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "proctor_pipeline_produce_duration_seconds",
			Help:    "Time a Send waited for the broker's acknowledgement, by topic.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5ms .. 4s
		}, []string{"topic"})),
	}
}

type consumerMetrics struct {
	consumed     prometheus.Counter
	handled      prometheus.Counter
	deadLettered *prometheus.CounterVec // curried with the topic; label reason (a DeadLetterReason)
	dbWaits      prometheus.Counter
	retries      prometheus.Counter
	commitErrors prometheus.Counter
	fetchErrors  prometheus.Counter
	latency      prometheus.Observer
	lag          *prometheus.GaugeVec // curried with the topic; label partition
}

func newConsumerMetrics(reg prometheus.Registerer, topic string) *consumerMetrics {
	counter := func(name, help string) prometheus.Counter {
		return register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: name, Help: help,
		}, []string{"topic"})).WithLabelValues(topic)
	}
	t := prometheus.Labels{"topic": topic}
	return &consumerMetrics{
		consumed: counter("proctor_pipeline_consumed_messages_total", "Messages fetched from Kafka, by topic (redeliveries count again)."),
		handled:  counter("proctor_pipeline_handled_messages_total", "Messages the handler processed successfully, by topic."),
		deadLettered: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "proctor_pipeline_dead_lettered_messages_total",
			Help: "Messages written to the dead-letter topic, by source topic and reason (invalid, panic, store_failed).",
		}, []string{"topic", "reason"})).MustCurryWith(t),
		dbWaits:      counter("proctor_pipeline_database_unavailable_retries_total", "Handler failures because the database was unavailable; the message was retried without limit, by topic."),
		retries:      counter("proctor_pipeline_handler_retries_total", "Handler failures that were retried (the database unavailable or the message's own, up to MaxAttempts), by topic."),
		commitErrors: counter("proctor_pipeline_commit_errors_total", "Failed offset commits (the messages will be redelivered), by topic."),
		fetchErrors:  counter("proctor_pipeline_fetch_errors_total", "Errors from FetchMessage (group join, broker unreachable), by topic."),
		latency: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "proctor_pipeline_handler_duration_seconds",
			Help:    "Duration of one handler call, by topic.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16), // 0.5ms .. 16s
		}, []string{"topic"})).WithLabelValues(topic),
		lag: register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "proctor_pipeline_consumer_lag_messages",
			Help: "Messages behind the partition's high watermark after the last handled message, as last seen by this process.",
		}, []string{"topic", "partition"})).MustCurryWith(t),
	}
}

// register registers c on reg, or returns the collector already registered
// under the same description. A nil reg registers nothing.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err) // same name, different labels: a programming error
	}
	return c
}
