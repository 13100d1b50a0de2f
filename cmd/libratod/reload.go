package main

import (
	"github.com/rs/zerolog"

	"github.com/libratod/libratod/cmd/libratod/internal/config"
)

// reload re-reads the configuration file and applies what can change
// while running (the keys tagged reload:"live" in package config): delivery
// settings, credentials, tags, prefix, percentiles, min_level, tag_syntaxes
// and the log level. The others keep their running values (a warning names
// those that changed). A configuration that does not load or validate is
// logged and the running one kept. Aggregated data is never touched.
func (d *daemon) reload() {
	d.notifyReloading()
	defer d.notifyReady()
	if d.opts.configPath == "" {
		d.log.Warn().Msg("SIGHUP: no configuration file to reload")
		return
	}
	cur, err := config.Load(d.opts.configPath, d.opts.getenv)
	if err == nil {
		err = cur.Validate(d.opts.dryRun != nil)
	}
	if err != nil {
		d.log.Error().Str("config", d.opts.configPath).Str("problems", err.Error()).
			Msg("SIGHUP: the new configuration is invalid; keeping the running one")
		return
	}
	if keys := config.KeepRestartValues(d.cfg, cur); len(keys) > 0 {
		d.log.Warn().Strs("keys", keys).Msg("SIGHUP: these changes need a restart and are not applied")
	}
	client, err := newClient(cur, d.opts.dryRun)
	if err != nil {
		d.log.Error().Err(err).Msg("SIGHUP: keeping the running configuration")
		return
	}
	otlpClient, err := newOTLPClient(cur)
	if err != nil {
		d.log.Error().Err(err).Msg("SIGHUP: keeping the running configuration")
		return
	}
	level, _ := zerolog.ParseLevel(cur.Log.Level) // validated
	d.levels.set(level)
	for _, err := range []error{d.ingest.SetMinLevel(cur.Aggregate.MinLevel), d.ingest.SetTagSyntaxes(cur.Listen.TagSyntaxes)} {
		if err != nil { // validated with the rest of cur: not expected
			d.log.Error().Err(err).Msg("SIGHUP: keeping the running value")
		}
	}
	d.ingest.SetServiceChecks(cur.Aggregate.ServiceChecks)
	d.flusher.Reconfigure(flusherConfig(cur, d.parts, otlpClient), libratoSender(client))
	d.cfg = cur
	d.log.Info().Str("config", d.opts.configPath).Msg("SIGHUP: configuration reloaded")
}
