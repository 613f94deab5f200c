package app

import (
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rampart-go/rampart/middleware"
	"github.com/rampart-go/rampart/models/outbound"
)

// The ranges the anomaly variables accept. Distinct counters hold up to
// their threshold of members per subject, so thresholds are capped to
// keep that memory bounded.
const (
	anomalyMaxThreshold = 10_000
	anomalyMinWindow    = 10 * time.Second
	anomalyMaxWindow    = 24 * time.Hour
	anomalyMaxFactor    = 1000
	anomalyMaxBaseline  = 100
	anomalyMaxKeyMin    = 1_000_000
)

// loadAnomalyConfig reads the APP_ANOMALY_* variables, APP_GEOIP_DB and
// APP_ALERT_WEBHOOK_URL, reporting each bad value to bad with the
// variable's name and the rule it breaks. The four thresholds accept
// "off", which turns their rule off.
func loadAnomalyConfig(get func(name, def string) string, bad func(name, rule string)) middleware.AnomalyConfig {
	a := middleware.DefaultAnomalyConfig()
	threshold := func(name string, def int) int {
		v := get(name, "")
		switch v {
		case "":
			return def
		case "off":
			return 0
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > anomalyMaxThreshold {
			bad(name, fmt.Sprintf("must be a whole number between 1 and %d, or off", anomalyMaxThreshold))
			return def
		}
		return n
	}
	whole := func(name string, def, max int) int { return wholeVar(get, bad, name, def, max) }
	window := func(name string, def time.Duration) time.Duration {
		return duration(get, bad, name, def, anomalyMinWindow, anomalyMaxWindow)
	}

	a.ScrapeObjects = threshold("APP_ANOMALY_SCRAPE_OBJECTS", a.ScrapeObjects)
	a.ScrapeWindow = window("APP_ANOMALY_SCRAPE_WINDOW", a.ScrapeWindow)

	switch v := get("APP_ANOMALY_KEY_SPIKE_FACTOR", ""); v {
	case "":
	case "off":
		a.KeySpikeFactor = 0
	default:
		// A factor of 1 or less would call a key's ordinary traffic a spike.
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f > 1 && f <= anomalyMaxFactor) {
			bad("APP_ANOMALY_KEY_SPIKE_FACTOR", fmt.Sprintf("must be a number above 1 and at most %d (e.g. 5 or 2.5), or off", anomalyMaxFactor))
		} else {
			a.KeySpikeFactor = f
		}
	}
	a.KeySpikeBucket = duration(get, bad, "APP_ANOMALY_KEY_SPIKE_BUCKET", a.KeySpikeBucket, anomalyMinWindow, time.Hour)
	a.KeySpikeBaseline = whole("APP_ANOMALY_KEY_SPIKE_BASELINE", a.KeySpikeBaseline, anomalyMaxBaseline)
	a.KeySpikeMin = whole("APP_ANOMALY_KEY_SPIKE_MIN", a.KeySpikeMin, anomalyMaxKeyMin)

	a.BOLADenials = threshold("APP_ANOMALY_BOLA_DENIALS", a.BOLADenials)
	a.BOLAWindow = window("APP_ANOMALY_BOLA_WINDOW", a.BOLAWindow)

	a.StuffingAccounts = threshold("APP_ANOMALY_STUFFING_ACCOUNTS", a.StuffingAccounts)
	a.StuffingWindow = window("APP_ANOMALY_STUFFING_WINDOW", a.StuffingWindow)

	a.GeoIPDB = get("APP_GEOIP_DB", "")
	if a.GeoIPDB != "" {
		// Whether it is a MaxMind DB is checked when the detector opens it.
		if fi, err := os.Stat(a.GeoIPDB); err != nil || !fi.Mode().IsRegular() {
			bad("APP_GEOIP_DB", "must name a readable MaxMind DB file, e.g. /var/lib/GeoIP/GeoLite2-Country.mmdb")
		}
	}
	a.AlertWebhookURL = get("APP_ALERT_WEBHOOK_URL", "")
	if a.AlertWebhookURL != "" {
		if err := middleware.CheckAlertWebhookURL(a.AlertWebhookURL); err != nil {
			bad("APP_ALERT_WEBHOOK_URL", err.Error())
		}
	}
	return a
}

// loadAlertWebhookAllow reads APP_ALERT_WEBHOOK_ALLOW, then checks that
// the alert webhook's URL (already checked to be an https URL with a
// host) leads to a public address or one of these ranges, as its
// outbound client will when it sends.
func loadAlertWebhookAllow(get func(name, def string) string, bad func(name, rule string), webhookURL string) []netip.Prefix {
	var allow []netip.Prefix
	if raw := get("APP_ALERT_WEBHOOK_ALLOW", ""); raw != "" {
		for _, s := range strings.Split(raw, ",") {
			s = strings.TrimSpace(s)
			p, err := netip.ParsePrefix(s)
			if err != nil {
				a, aerr := netip.ParseAddr(s)
				if aerr != nil || a.Zone() != "" {
					bad("APP_ALERT_WEBHOOK_ALLOW", "must list IP addresses or CIDR ranges such as 10.20.0.0/16")
					continue
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			if p.Bits() == 0 {
				bad("APP_ALERT_WEBHOOK_ALLOW", "must not admit every address ("+p.String()+"): list the receiver's own range")
				continue
			}
			allow = append(allow, p.Masked())
		}
	}
	if webhookURL != "" && middleware.CheckAlertWebhookURL(webhookURL) == nil {
		if _, err := outbound.ValidateURL(webhookURL, middleware.AlertWebhookOptions(webhookURL, allow)); err != nil {
			bad("APP_ALERT_WEBHOOK_URL", "is refused: "+err.Error()+"; an internal receiver's address must be listed in APP_ALERT_WEBHOOK_ALLOW")
		}
	}
	return allow
}

// anomalyRedacted returns the anomaly settings as "NAME=value" lines for
// Config.Redacted.
func anomalyRedacted(a middleware.AnomalyConfig, allow []netip.Prefix) []string {
	threshold := func(n int) string {
		if n == 0 {
			return "off"
		}
		return strconv.Itoa(n)
	}
	factor := "off"
	if a.KeySpikeFactor > 0 {
		factor = strconv.FormatFloat(a.KeySpikeFactor, 'f', -1, 64)
	}
	return []string{
		"APP_ANOMALY_SCRAPE_OBJECTS=" + threshold(a.ScrapeObjects),
		"APP_ANOMALY_SCRAPE_WINDOW=" + a.ScrapeWindow.String(),
		"APP_ANOMALY_KEY_SPIKE_FACTOR=" + factor,
		"APP_ANOMALY_KEY_SPIKE_BUCKET=" + a.KeySpikeBucket.String(),
		"APP_ANOMALY_KEY_SPIKE_BASELINE=" + strconv.Itoa(a.KeySpikeBaseline),
		"APP_ANOMALY_KEY_SPIKE_MIN=" + strconv.Itoa(a.KeySpikeMin),
		"APP_ANOMALY_BOLA_DENIALS=" + threshold(a.BOLADenials),
		"APP_ANOMALY_BOLA_WINDOW=" + a.BOLAWindow.String(),
		"APP_ANOMALY_STUFFING_ACCOUNTS=" + threshold(a.StuffingAccounts),
		"APP_ANOMALY_STUFFING_WINDOW=" + a.StuffingWindow.String(),
		"APP_GEOIP_DB=" + a.GeoIPDB,
		"APP_ALERT_WEBHOOK_URL=" + redactWebhookURL(a.AlertWebhookURL),
		"APP_ALERT_WEBHOOK_ALLOW=" + joinPrefixes(allow),
	}
}

// joinPrefixes prints ranges as APP_ALERT_WEBHOOK_ALLOW takes them.
func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// redactWebhookURL shows the scheme and host of an alert webhook URL only:
// receivers (chat and paging services) often put a token in the path or
// the query.
func redactWebhookURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(not shown: not a valid URL)"
	}
	out := u.Scheme + "://" + u.Host
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		out += "/(path not shown)"
	}
	return out
}
