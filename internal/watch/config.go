package watch

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"go.yaml.in/yaml/v3"
)

// Config is a watch's YAML file (`pacswatch watch CONFIG`):
//
//	name: weekly-in              # the scans' --name (default: the file's name without extension)
//	db: pacswatch.db             # the store, relative to the file
//	targets: [203.0.113.0/24]    # what every run scans (or targets_file: a -iL file)
//	scan_args: [-p, "104,11112", --rate, "500"]   # more scan flags
//	yes: false                   # scan's --yes, for more than 65,536 public targets
//	schedule: {every: 168h}      # or {cron: "0 3 * * 1"} (UTC)
//	geo: GeoLite2-City.mmdb      # optional: alerts say the country and region
//	alerts:
//	  growth_percent: 10         # a system's studies up by more than this: a growth alert
//	  webhook: {url: "https://cert.example/hook", headers: {X-Token: "..."}, attempts: 6, backoff: 1s}
//	  smtp: {addr: "mail.example:587", from: "pacswatch@example", to: [cert@example], username: u, password_file: p}
//	metrics_listen: 127.0.0.1:9101   # Prometheus /metrics (loopback only)
//	state: weekly-in.state.json      # what was alerted (default: beside the file)
type Config struct {
	Name        string   `yaml:"name"`
	DB          string   `yaml:"db"`
	Targets     []string `yaml:"targets"`
	TargetsFile string   `yaml:"targets_file"`
	ScanArgs    []string `yaml:"scan_args"`
	Yes         bool     `yaml:"yes"`
	Schedule    Schedule `yaml:"schedule"`
	Geo         string   `yaml:"geo"`
	Alerts      Alerts   `yaml:"alerts"`
	Metrics     string   `yaml:"metrics_listen"`
	State       string   `yaml:"state"`
}

// Schedule is when runs start: every Every from the watch's start, or at the times of a cron
// expression (five fields, UTC). Exactly one is set.
type Schedule struct {
	Every time.Duration `yaml:"every"`
	Cron  string        `yaml:"cron"`
}

// Alerts says what to alert on, and where.
type Alerts struct {
	// GrowthPercent: a system accessible in both runs whose studies grew by more than this
	// many percent is a growth alert. Default 10 (report's "ugly"); 0 alerts any growth.
	GrowthPercent *float64  `yaml:"growth_percent"`
	Webhook       *Webhook  `yaml:"webhook"`
	SMTP          *SMTPSink `yaml:"smtp"`
}

// Growth returns the growth threshold in percent.
func (a Alerts) Growth() float64 {
	if a.GrowthPercent == nil {
		return DefaultGrowth
	}
	return *a.GrowthPercent
}

// DefaultGrowth is Alerts.GrowthPercent's default.
const DefaultGrowth = 10

// Scan flags a watch sets itself, refused in scan_args.
var ownFlags = []string{"--db", "--name", "--resume", "-o", "--output", "--shard", "-q", "--quiet", "--yes"}

// minEvery is the shortest interval a schedule may have.
const minEvery = time.Second

// LoadConfig reads and checks a watch's YAML file. Relative paths in it are taken from the
// file's directory. Unknown keys are refused.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return Config{}, fmt.Errorf("watch: read %s: %w", path, err)
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("watch: %s: %s", path, firstLine(err.Error()))
	}
	dir := filepath.Dir(path)
	if c.Name == "" {
		c.Name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}
	if c.DB == "" {
		c.DB = "pacswatch.db"
	}
	if c.State == "" {
		c.State = strings.TrimSuffix(path, filepath.Ext(path)) + ".state.json"
	}
	for _, p := range []*string{&c.DB, &c.TargetsFile, &c.Geo, &c.State} {
		if *p != "" && !filepath.IsAbs(*p) && !strings.Contains(*p, "://") {
			*p = filepath.Join(dir, *p)
		}
	}
	if c.Alerts.SMTP != nil && c.Alerts.SMTP.PasswordFile != "" && !filepath.IsAbs(c.Alerts.SMTP.PasswordFile) {
		c.Alerts.SMTP.PasswordFile = filepath.Join(dir, c.Alerts.SMTP.PasswordFile)
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("watch: %s: %w", path, err)
	}
	return c, nil
}

// Validate checks a configuration.
func (c *Config) Validate() error {
	switch {
	case c.Name == "":
		return errors.New("name is empty")
	case len(c.Targets) == 0 && c.TargetsFile == "":
		return errors.New("no targets (targets or targets_file)")
	case len(c.Targets) > 0 && c.TargetsFile != "":
		return errors.New("give targets or targets_file, not both")
	}
	for _, a := range c.ScanArgs {
		for _, own := range ownFlags {
			if a == own || strings.HasPrefix(a, own+"=") {
				return fmt.Errorf("scan_args: %s is the watch's own (db, name, resume, output, shard and quiet are set by watch)", own)
			}
		}
	}
	if _, err := c.Schedule.Parse(); err != nil {
		return err
	}
	if g := c.Alerts.Growth(); !(g >= 0 && g <= 1e6) {
		return fmt.Errorf("alerts: growth_percent %v is not in [0, 1000000]", g)
	}
	if w := c.Alerts.Webhook; w != nil {
		if err := w.validate(); err != nil {
			return err
		}
	}
	if m := c.Alerts.SMTP; m != nil {
		if m.Addr == "" || m.From == "" || len(m.To) == 0 {
			return errors.New("alerts: smtp needs addr, from and to")
		}
	}
	return nil
}

func (w *Webhook) validate() error {
	u, err := url.Parse(w.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("alerts: webhook url is not an http or https URL")
	}
	if w.Attempts < 0 || w.Attempts > 100 || w.Backoff < 0 || w.MaxBackoff < 0 || w.Timeout < 0 {
		return errors.New("alerts: webhook attempts must be 0 to 100, backoff and timeout not negative")
	}
	return nil
}

// Next is when a schedule starts runs.
type Next interface {
	// Next returns the first start strictly after t.
	Next(t time.Time) time.Time
}

type every time.Duration

func (e every) Next(t time.Time) time.Time { return t.Add(time.Duration(e)) }

type cronNext struct{ s cron.Schedule }

func (c cronNext) Next(t time.Time) time.Time { return c.s.Next(t.UTC()) }

// Parse checks the schedule and returns it.
func (s Schedule) Parse() (Next, error) {
	switch {
	case s.Every != 0 && s.Cron != "":
		return nil, errors.New("schedule: give every or cron, not both")
	case s.Every != 0:
		if s.Every < minEvery {
			return nil, fmt.Errorf("schedule: every %v is shorter than %v", s.Every, minEvery)
		}
		return every(s.Every), nil
	case s.Cron != "":
		sc, err := cron.ParseStandard(s.Cron)
		if err != nil {
			return nil, fmt.Errorf("schedule: cron %q: %s", capText(s.Cron), firstLine(err.Error()))
		}
		return cronNext{sc}, nil
	}
	return nil, errors.New("schedule: give every (a duration such as 168h) or cron (five fields)")
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return capText(s)
}

func capText(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}
