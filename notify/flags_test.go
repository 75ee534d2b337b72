package notify_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"camhub/internal/config"
	"camhub/notify"
)

// The notify settings from a YAML file: a map of targets and plain URLs;
// secrets given inline, or in a URL, are refused with a message that does
// not show them.
func TestFlagsFromYAML(t *testing.T) {
	load := func(yaml string, args ...string) (notify.Config, error) {
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		fs.String(config.FileFlag, "", "")
		var f notify.Flags
		f.Add(fs)
		file := writeFile(t, "hub.yaml", yaml)
		if err := config.Load(fs, append([]string{"--config", file}, args...)); err != nil {
			return notify.Config{}, err
		}
		return f.Config()
	}
	c, err := load(`
notify:
  webhooks:
    - {url: "https://example.org/hook", header-file: /etc/camhub/hook-headers, cams: [front, back], end: true}
  ntfy:
    - url: https://ntfy.sh/garden
      token-env: NTFY_TOKEN
      priority: 4
notify-webhook: [http://127.0.0.1:9000/a]
notify-retries: 2
notify-end: true
`)
	if err != nil {
		t.Fatal(err)
	}
	w, n := c.Targets.Webhooks, c.Targets.Ntfy
	if len(w) != 2 || w[0].URL != "https://example.org/hook" || strings.Join(w[0].Cams, ",") != "front,back" || !*w[0].End ||
		w[1].URL != "http://127.0.0.1:9000/a" || len(n) != 1 || n[0].TokenEnv != "NTFY_TOKEN" || n[0].Priority != 4 ||
		c.Settings.Retries != 2 || !c.Settings.End {
		t.Fatalf("%+v", c)
	}
	for _, bad := range []string{
		"notify: {webhooks: [{url: https://example.org, token: hunter2}]}\n",
		"notify: {ntfy: [{url: \"https://me:hunter2@ntfy.sh/t\"}]}\n",
		"notify-webhook: [\"https://me:hunter2@example.org/\"]\n",
		"notify: {ntfy: [{url: https://ntfy.sh/t, token-file: /a, token-env: B}]}\n",
	} {
		_, err := load(bad)
		if err == nil {
			t.Fatalf("accepted %q", bad)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("the error shows the secret: %v", err)
		}
		if !errors.Is(err, notify.ErrConfig) && !errors.Is(err, config.ErrConfig) {
			t.Fatalf("%q: %v", bad, err)
		}
	}
}
