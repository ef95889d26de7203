package agent

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/poolagent/poolagent/agent/config"
	"github.com/poolagent/poolagent/agent/state"
	"github.com/poolagent/poolagent/api/okta"
	"github.com/poolagent/poolagent/api/sailpoint"
	"github.com/poolagent/poolagent/internal/vercmp"
	"github.com/poolagent/poolagent/internal/version"
	"github.com/poolagent/poolagent/updater"
)

// minNextBeat is the soonest a server's nextHeartbeat brings the next
// heartbeat.
const minNextBeat = time.Second

// handleReply applies a heartbeat reply: the interval, the server's clock,
// new jobs (checked), refreshed windows and cancellations.
func (d *Daemon) handleReply(ctx context.Context, rep *sailpoint.StatusReply, recv time.Time, reported []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	changed := false
	if s, err := strconv.Atoi(rep.Body.Configuration["heartbeatInterval"]); err == nil && s > 0 {
		if iv := time.Duration(s) * time.Second; iv != d.interval {
			d.log.Info("heartbeat interval set by the server", zap.Duration("interval", iv))
			d.interval = iv
		}
	}
	d.nextBeat = 0
	if s, err := strconv.Atoi(rep.Body.Configuration[sailpoint.ConfigNextHeartbeat]); err == nil && s > 0 {
		// Once, and never more often than every second nor later than
		// the interval: a server cannot make a host spin.
		d.nextBeat = min(max(time.Duration(s)*time.Second, minNextBeat), d.interval)
	}
	d.noteWarningsLocked(&rep.Body)
	// The server's clock only moves forward: a replayed old reply does
	// not move it back. The first reply sets it, even behind the host's
	// own clock (a skewed host or server).
	if !rep.Timestamp.IsZero() && (d.st.ServerTime.IsZero() || rep.Timestamp.After(d.serverNowLocked(recv))) {
		d.st.ServerTime, d.st.LocalTime, d.serverRecv = rep.Timestamp, recv, recv
	}
	for _, id := range reported {
		if j := d.st.Job(id); j != nil && j.Terminal() {
			j.Reported = true
			changed = true
		}
	}
	if d.selfPending {
		if err := d.upd.ConfirmSelf(ctx, ""); err != nil {
			d.log.Error("confirm self-update", zap.Error(err))
		} else {
			d.log.Info("self-update confirmed", zap.String("version", version.String()))
			for _, j := range d.st.Jobs {
				if d.awaitsSelfConfirmLocked(j) {
					d.finishLocked(j, nil)
					d.rememberPreviousLocked(config.SelfName, j.FromVersion, j.FromSHA256)
					d.log.Info("self-update job finished", zap.String("job", j.UUID), zap.String("version", j.Version))
				}
			}
			d.selfPending = false
			changed = true
			// Report the FINISHED job now, not an interval later.
			d.kick()
		}
	}
	now := d.serverNowLocked(time.Now())
	for i := range rep.Body.Jobs {
		if d.acceptLocked(ctx, &rep.Body.Jobs[i], recv, now) {
			changed = true
		}
	}
	if changed {
		d.saveLocked()
	}
	d.wakeLocked()
}

// poolTypeOf reads the pool's Okta agent type from a reply: the poolType
// key, or from a server older than it clusterType when that names an Okta
// agent type (such servers sent the pool type there).
func poolTypeOf(b *sailpoint.ReplyBody) string {
	if t := b.Configuration[sailpoint.ConfigPoolType]; t != "" {
		return t
	}
	if t, ok := okta.ParseAgentType(b.Configuration[sailpoint.ConfigClusterType]); ok {
		return string(t)
	}
	return ""
}

// noteWarningsLocked keeps the pool type and the server's warnings for
// the status, and logs a warning when it first appears. A server older
// than the warnings field says nothing of agents of the wrong type: the
// daemon then compares its agents' types with the pool's itself.
func (d *Daemon) noteWarningsLocked(b *sailpoint.ReplyBody) {
	d.poolType = poolTypeOf(b)
	warnings := b.Warnings
	if warnings == nil && d.poolType != "" {
		for _, a := range d.cfg.Agents {
			if a.Type != d.poolType {
				warnings = append(warnings, fmt.Sprintf("TYPE_MISMATCH: managed agent %q has type %q, which is not its pool's type %q: it is not one of the pool's agents and gets no updates",
					a.Name, a.Type, d.poolType))
			}
		}
	}
	for _, w := range warnings {
		if !slices.Contains(d.warnings, w) {
			d.log.Warn("the server warns: "+w, zap.String("pool_type", d.poolType))
		}
	}
	d.warnings = slices.Clone(warnings)
}

// serverNowLocked estimates the server's clock at local instant t from the
// newest server timestamp (the monotonic clock measures the time since).
func (d *Daemon) serverNowLocked(t time.Time) time.Time {
	if d.st.ServerTime.IsZero() {
		return t
	}
	ref := d.serverRecv
	if ref.IsZero() {
		ref = d.st.LocalTime
	}
	return d.st.ServerTime.Add(t.Sub(ref))
}

// seqKey is the replay-protection key of a job: its update, or the managed
// process for jobs without an update (self-updates).
func seqKey(j *sailpoint.Job) string {
	if j.UpdateID != "" {
		return j.UpdateID
	}
	for name := range j.ManagedProcessConfiguration {
		return "process:" + name
	}
	return ""
}

// acceptLocked handles one job of a reply and reports whether the state
// changed.
func (d *Daemon) acceptLocked(ctx context.Context, sj *sailpoint.Job, recv, serverNow time.Time) bool {
	log := d.log.With(zap.String("job", sj.UUID))
	rec := d.st.Job(sj.UUID)
	if sj.State == sailpoint.JobCancelled {
		if rec == nil || rec.Terminal() {
			return false
		}
		if rec.Swapped {
			log.Info("the server cancelled a job past its swap; it finishes")
			return false
		}
		if r := d.runs[sj.UUID]; r != nil {
			log.Info("the server cancelled the job; stopping it")
			r.byServer = true
			r.cancel()
			return false
		}
		d.cancelLocked(rec)
		return true
	}
	if !sj.ExpiresAt.IsZero() && sj.ExpiresAt.Before(serverNow) {
		log.Warn("ignoring an expired job (replayed or stale reply)", zap.Time("expires_at", sj.ExpiresAt), zap.Time("server_now", serverNow))
		return false
	}
	key := seqKey(sj)
	if sj.Sequence < d.st.Sequences[key] {
		log.Warn("ignoring a job with an old sequence (replayed reply)", zap.Int64("sequence", sj.Sequence), zap.Int64("highest", d.st.Sequences[key]))
		return false
	}
	if rec != nil {
		if rec.Terminal() {
			return false
		}
		// The same job again: refresh its window and expiry, and its
		// artifact's URLs (presigned URLs expire), kept in the state so a
		// download resumed after a restart uses the fresh ones.
		rec.Spec.Maintenance, rec.Spec.ExpiresAt = sj.Maintenance, sj.ExpiresAt
		d.windows[sj.UUID] = parseWindow(sj.Maintenance, recv)
		return refreshArtifact(rec, sj)
	}
	d.st.Sequences[key] = sj.Sequence
	rec = &state.Job{UUID: sj.UUID, UpdateID: sj.UpdateID, Spec: *sj, Received: time.Now()}
	for name, mp := range sj.ManagedProcessConfiguration {
		rec.Name, rec.Type, rec.Version = name, mp.Type, mp.Version
	}
	d.moveLocked(rec, stepReceived, 0, "")
	d.st.Jobs = append(d.st.Jobs, rec)
	d.windows[sj.UUID] = parseWindow(sj.Maintenance, recv)
	if err := d.checkJob(sj); err != nil {
		log.Error("refusing a job", zap.Error(err))
		d.finishLocked(rec, err)
		return true
	}
	log.Info("job received", zap.String("agent", rec.Name), zap.String("version", rec.Version), zap.Int64("sequence", sj.Sequence))
	d.startJobLocked(ctx, rec)
	return true
}

// checkJob refuses a job naming anything the config does not allow: an
// unknown managed process, a type mismatch, a path outside the install
// roots or with "..", an artifact for another program, version or platform,
// or an artifact URL off the server and the allow-list.
func (d *Daemon) checkJob(j *sailpoint.Job) error {
	return checkJob(d.cfg, d.server, j)
}

func checkJob(cfg config.Config, server *url.URL, j *sailpoint.Job) error {
	refuse := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrJobRefused, fmt.Sprintf(format, a...))
	}
	if j.Type != "" && j.Type != sailpoint.JobTypeUpgrade {
		return refuse("job type %q is not %s", j.Type, sailpoint.JobTypeUpgrade)
	}
	if len(j.ManagedProcessConfiguration) != 1 {
		return refuse("a job must name exactly one managed process, this one names %d", len(j.ManagedProcessConfiguration))
	}
	var name string
	var mp sailpoint.ManagedProcess
	for name, mp = range j.ManagedProcessConfiguration {
	}
	var binary, typ string
	if name == config.SelfName {
		if !cfg.SelfUpdate.Enabled {
			return refuse("self-update is disabled by self_update.enabled in this host's config")
		}
		typ = config.SelfName
	} else {
		a, ok := cfg.Agent(name)
		if !ok {
			return refuse("no managed agent %q is configured on this host", name)
		}
		binary, typ = a.Binary, a.Type
	}
	if mp.Type != typ {
		return refuse("managed process %q has type %q in the job but %q in this host's config", name, mp.Type, typ)
	}
	if err := checkPath(cfg, mp.Path, name, typ, binary); err != nil {
		return refuse("managed process %q: %v", name, err)
	}
	if !vercmp.Valid(mp.Version) {
		return refuse("target version %q is not a version", mp.Version)
	}
	a := mp.Artifact
	if a == nil {
		return refuse("the job carries no artifact for %s %s", name, mp.Version)
	}
	wantName := typ
	if a.Name != wantName || a.Version != mp.Version || a.OS != runtime.GOOS || a.Arch != runtime.GOARCH {
		return refuse("the artifact is %s %s %s/%s, this host needs %s %s %s/%s", a.Name, a.Version, a.OS, a.Arch,
			wantName, mp.Version, runtime.GOOS, runtime.GOARCH)
	}
	if err := checkArtifactURL(cfg, server, "artifact", a.URL); err != nil {
		return refuse("%v", err)
	}
	if a.Size <= 0 || len(a.SHA256) != 64 {
		return refuse("the artifact descriptor has no size or SHA-256")
	}
	return nil
}

// checkArtifactURL accepts a download URL on the server's origin or on
// an origin of artifacts.allowed_urls, without a user or a .. element.
func checkArtifactURL(cfg config.Config, server *url.URL, what, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || u.Host == "" {
		return fmt.Errorf("%s URL %q is not a URL", what, raw)
	}
	if slices.Contains(strings.Split(u.Path, "/"), "..") {
		return fmt.Errorf("%s URL %q contains a .. element", what, raw)
	}
	if o := origin(u); o != origin(server) && !slices.ContainsFunc(cfg.Artifacts.AllowedURLs, func(s string) bool {
		au, err := url.Parse(s)
		return err == nil && origin(au) == o
	}) {
		return fmt.Errorf("%s URL %s is neither on the server %s nor in artifacts.allowed_urls", what, raw, origin(server))
	}
	return nil
}

// patchOf maps a job's patch offer to the updater's, nil when it offers
// none. An offer this host cannot use is an error (wrapping
// updater.ErrPatch): the job goes on with the full artifact and reports
// why as a PATCH warning.
func (d *Daemon) patchOf(j *state.Job) (*updater.Patch, error) {
	a := j.Spec.ManagedProcessConfiguration[j.Name].Artifact
	if a == nil || a.Patch == nil {
		return nil, nil
	}
	p := a.Patch
	d.mu.Lock()
	cfg := d.cfg
	d.mu.Unlock()
	if err := checkArtifactURL(cfg, d.server, "patch", p.URL); err != nil {
		return nil, fmt.Errorf("%w: %w", updater.ErrPatch, err)
	}
	if p.Size <= 0 || len(p.SHA256) != 64 || len(p.FromSHA256) != 64 {
		return nil, fmt.Errorf("%w: the patch descriptor has no size or SHA-256", updater.ErrPatch)
	}
	return &updater.Patch{FromVersion: p.FromVersion, FromSHA256: p.FromSHA256, URL: p.URL, Size: p.Size, SHA256: p.SHA256}, nil
}

// checkPath accepts a job's path when it is empty, the process's name,
// "<type>/<name>" (what poolserver sends), or the configured binary itself
// inside an install root; never with "..".
func checkPath(cfg config.Config, p, name, typ, binary string) error {
	if p == "" || p == name || p == typ+"/"+name {
		return nil
	}
	if slices.Contains(strings.FieldsFunc(p, func(r rune) bool { return r == '/' || r == '\\' }), "..") {
		return fmt.Errorf("path %q contains a .. element", p)
	}
	if filepath.IsAbs(p) || path.IsAbs(p) {
		if binary == "" || filepath.Clean(p) != binary {
			return fmt.Errorf("path %q is not the configured binary", p)
		}
		if !cfg.InRoots(binary) {
			return fmt.Errorf("path %q is outside the install roots", p)
		}
		return nil
	}
	return fmt.Errorf("path %q does not name this managed process", p)
}

// refreshArtifact copies the URLs of sj's artifacts into the stored job
// when they describe the same file (name, version, platform, size, SHA-256
// and signature), and reports whether anything changed. Anything else in a
// repeated job is ignored: a job's content never changes under its id.
func refreshArtifact(rec *state.Job, sj *sailpoint.Job) bool {
	changed := false
	for name, mp := range sj.ManagedProcessConfiguration {
		old, ok := rec.Spec.ManagedProcessConfiguration[name]
		if !ok || old.Artifact == nil || mp.Artifact == nil {
			continue
		}
		a, b := *old.Artifact, *mp.Artifact
		if a.Name != b.Name || a.Version != b.Version || a.OS != b.OS || a.Arch != b.Arch || a.Size != b.Size || a.SHA256 != b.SHA256 || a.Signature != b.Signature {
			continue
		}
		if a.URL == b.URL && slices.Equal(a.Mirrors, b.Mirrors) {
			continue
		}
		a.URL, a.Mirrors = b.URL, slices.Clone(b.Mirrors)
		old.Artifact = &a
		rec.Spec.ManagedProcessConfiguration[name] = old
		changed = true
	}
	return changed
}

// mirrors lists the sources tried before the artifact's URL: this host's
// own artifacts.mirrors, then the server's (the pool's mirrors, the object
// store's presigned URL) when artifacts.use_server_mirrors allows them and
// their origin is the server's or in artifacts.allowed_urls: the same
// allow-list as the artifact URL, so a control plane cannot point this
// host at an origin its config does not name.
func mirrors(cfg config.Config, server *url.URL, a *sailpoint.Artifact, log *zap.Logger) []string {
	var out []string
	for _, m := range cfg.Artifacts.Mirrors {
		out = append(out, strings.TrimRight(m, "/")+"/"+strings.ToLower(a.SHA256))
	}
	if len(a.Mirrors) == 0 {
		return out
	}
	if !cfg.Artifacts.UseServerMirrors {
		log.Debug("ignoring the server's artifact mirrors: artifacts.use_server_mirrors is off", zap.Int("mirrors", len(a.Mirrors)))
		return out
	}
	for _, m := range a.Mirrors {
		if err := allowedSource(cfg, server, m); err != nil {
			log.Warn("ignoring an artifact mirror from the server", zap.String("mirror", redactURL(m)), zap.Error(err))
			continue
		}
		out = append(out, m)
	}
	return out
}

// allowedSource accepts a URL on the server's origin or one in
// artifacts.allowed_urls, without credentials or "..".
func allowedSource(cfg config.Config, server *url.URL, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return errors.New("not an http(s) URL without credentials")
	}
	if u.Scheme == "http" && !cfg.Artifacts.AllowInsecureHTTP {
		return errors.New("plain http refused: use https or set artifacts.allow_insecure_http")
	}
	if slices.Contains(strings.Split(u.Path, "/"), "..") {
		return errors.New("contains a .. element")
	}
	if o := origin(u); o != origin(server) && !slices.ContainsFunc(cfg.Artifacts.AllowedURLs, func(s string) bool {
		au, err := url.Parse(s)
		return err == nil && origin(au) == o
	}) {
		return fmt.Errorf("origin %s is neither the server's nor in artifacts.allowed_urls", o)
	}
	return nil
}

// redactURL drops a URL's query (a presigned URL's signature) for logs.
func redactURL(raw string) string {
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		return raw[:i] + "?…"
	}
	return raw
}

// updaterJobWithSources is updaterJob with the artifact's mirrors, and a
// Refresh reading the stored job (which heartbeat replies refresh).
func (d *Daemon) updaterJobWithSources(j *state.Job) updater.Job {
	d.mu.Lock()
	defer d.mu.Unlock()
	job := updaterJob(j)
	job.Artifact.Mirrors = d.mirrorsLocked(j)
	job.Refresh = func() updater.Artifact {
		d.mu.Lock()
		defer d.mu.Unlock()
		fresh := updaterJob(j).Artifact
		fresh.Mirrors = d.mirrorsLocked(j)
		return fresh
	}
	return job
}

func (d *Daemon) mirrorsLocked(j *state.Job) []string {
	a := j.Spec.ManagedProcessConfiguration[j.Name].Artifact
	if a == nil {
		return nil
	}
	return mirrors(d.cfg, d.server, a, d.log.With(zap.String("job", j.UUID)))
}

// updaterJob converts a checked job. AllowDowngrade stays false: the
// server's allowDowngrade alone never permits one; runJob sets it from the
// host's own policy (checkDowngrade).
func updaterJob(j *state.Job) updater.Job {
	mp := j.Spec.ManagedProcessConfiguration[j.Name]
	a := mp.Artifact
	return updater.Job{
		ID: j.UUID,
		Artifact: updater.Artifact{
			Meta: updater.Meta{Name: a.Name, Version: a.Version, OS: a.OS, Arch: a.Arch},
			URL:  a.URL, Size: a.Size, SHA256: a.SHA256, Signature: []byte(a.Signature),
		},
		RateLimit: j.Spec.DownloadRateLimit,
	}
}

// startJobLocked starts a job's goroutine. The self-update awaiting its
// confirmation has nothing left to run: its install is done.
func (d *Daemon) startJobLocked(ctx context.Context, j *state.Job) {
	if _, ok := d.runs[j.UUID]; ok || d.awaitsSelfConfirmLocked(j) {
		return
	}
	if _, ok := d.windows[j.UUID]; !ok {
		d.windows[j.UUID] = parseWindow(j.Spec.Maintenance, d.st.LocalTime)
	}
	jctx, cancel := context.WithCancel(ctx)
	r := &jobRun{cancel: cancel}
	d.runs[j.UUID] = r
	d.jobsWG.Add(1)
	go func() {
		defer d.jobsWG.Done()
		defer cancel()
		d.runJob(jctx, ctx, j, r)
		d.mu.Lock()
		delete(d.runs, j.UUID)
		d.mu.Unlock()
	}()
}

// mayInstall reports whether j may swap now.
func (d *Daemon) mayInstall(j *state.Job) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.mayInstallLocked(j)
}

func (d *Daemon) mayInstallLocked(j *state.Job) bool {
	if d.cfg.Maintenance.Policy == config.PolicyManual && !j.InstallRequested && j.Name != config.SelfName {
		return false
	}
	return d.windows[j.UUID].open(time.Now(), d.cfg.Maintenance.MinRemaining.Duration)
}

// setStep makes j take step s outside the daemon's lock; a change of its
// state is saved at once and reported within ProgressDelay.
func (d *Daemon) setStep(j *state.Job, s jobStep) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.moveLocked(j, s, 0, "") {
		d.saveLocked()
		defer d.kickSoon()
	}
}

// finishLocked ends a job: FINISHED/Success when err is nil, else
// FAILED/Failed with the reason.
func (d *Daemon) finishLocked(j *state.Job, err error) {
	if err == nil {
		d.moveLocked(j, stepFinished, 0, "")
	} else {
		d.moveLocked(j, stepFailed, 0, failureMessage(err))
	}
}

// cancelLocked ends a job the server cancelled before its swap.
func (d *Daemon) cancelLocked(j *state.Job) {
	d.moveLocked(j, stepCancelled, 0, "")
	d.log.Info("job cancelled", zap.String("job", j.UUID))
}

// setAgentStatusLocked copies a job's status to its agent's report.
func (d *Daemon) setAgentStatusLocked(j *state.Job) {
	s := d.st.Agents[j.Name]
	if s == nil {
		if j.Name != config.SelfName {
			if _, ok := d.cfg.Agent(j.Name); !ok {
				return // a refused job for an unknown agent
			}
		}
		s = &state.Agent{}
		d.st.Agents[j.Name] = s
	}
	s.UpdateStatus, s.UpdateMessage = j.UpdateStatus, j.UpdateMessage
}
