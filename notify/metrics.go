package notify

import "github.com/prometheus/client_golang/prometheus"

var (
	mSent    = prometheus.NewDesc("camhub_notify_sent_total", "Notifications delivered, by target (webhook-N, ntfy-N in the order of the settings).", []string{"target"}, nil)
	mFailed  = prometheus.NewDesc("camhub_notify_failed_total", "Notifications given up on after every try, or refused by the target (4xx).", []string{"target"}, nil)
	mDropped = prometheus.NewDesc("camhub_notify_dropped_total", "Notifications dropped from a full queue (the target was too slow or failing).", []string{"target"}, nil)
	mRetries = prometheus.NewDesc("camhub_notify_retries_total", "Tries after a failed one.", []string{"target"}, nil)
	mQueued  = prometheus.NewDesc("camhub_notify_queued", "Notifications waiting to be sent.", []string{"target"}, nil)
	mEvents  = prometheus.NewDesc("camhub_notify_events_total", "Event documents read from EVENTS, by what was done: notified (queued for the targets that want it), stale (older than --notify-max-age) or bad.", []string{"result"}, nil)
)

// Collector returns a Prometheus collector of the notifier's counters.
func (n *Notifier) Collector() prometheus.Collector { return collector{n} }

type collector struct{ n *Notifier }

func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{mSent, mFailed, mDropped, mRetries, mQueued, mEvents} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	for _, t := range n.targets {
		ch <- prometheus.MustNewConstMetric(mSent, prometheus.CounterValue, float64(t.sent.Load()), t.name)
		ch <- prometheus.MustNewConstMetric(mFailed, prometheus.CounterValue, float64(t.failed.Load()), t.name)
		ch <- prometheus.MustNewConstMetric(mDropped, prometheus.CounterValue, float64(t.dropped.Load()), t.name)
		ch <- prometheus.MustNewConstMetric(mRetries, prometheus.CounterValue, float64(t.retries.Load()), t.name)
		ch <- prometheus.MustNewConstMetric(mQueued, prometheus.GaugeValue, float64(t.q.len()), t.name)
	}
	s := n.Stats()
	ch <- prometheus.MustNewConstMetric(mEvents, prometheus.CounterValue, float64(s.Events-s.Stale), "notified")
	ch <- prometheus.MustNewConstMetric(mEvents, prometheus.CounterValue, float64(s.Stale), "stale")
	ch <- prometheus.MustNewConstMetric(mEvents, prometheus.CounterValue, float64(s.Bad), "bad")
}
