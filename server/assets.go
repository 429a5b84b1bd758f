package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The daemon's JetStream assets (the room stream, the KV buckets) are
// created with the replicas and limits it is configured with, but an
// existing asset is the operator's as much as ours: it is never scaled
// down, and a limit an operator set wider is kept. ensureStream and
// ensureKV create an asset, or else update only what the daemon owns
// (subjects, description, direct gets, what must be raised) and log what
// they keep that differs from the flags.

// assetRetryFor bounds the attempts to create or update an asset while the
// cluster cannot take them yet: no JetStream leader, or a node of a new
// cluster not yet joined. Elections take seconds.
const assetRetryFor = 30 * time.Second

// wider reports whether JetStream limit have allows at least as much as
// want, where 0 or a negative value means unlimited.
func wider[T int64 | time.Duration | int32](have, want T) bool {
	switch {
	case have <= 0:
		return true
	case want <= 0:
		return false
	}
	return have >= want
}

// setKey is the metadata key of an asset that records the limits the
// daemon last set on it, as "field=value" words: a limit that still has
// that value is the daemon's to change; one that differs was set by an
// operator since, and is never lowered.
const setKey = "persona_set"

// limit is one replicas or size/age limit of an asset: what is stored,
// what the flags ask for, and its metadata word.
type limit struct {
	name       string
	have, want int64
}

// word is l's value as setKey records it.
func (l limit) word(v int64) string { return l.name + "=" + strconv.FormatInt(v, 10) }

// mergeLimits decides each limit: the asked value where the daemon owns
// the stored one (it is what the daemon last set, or the asset is the
// daemon's and predates setKey), or is narrower; else the stored one, with
// a note. It returns the values, in order, the notes and the new setKey.
func mergeLimits(meta map[string]string, ours bool, ls []limit) (vals []int64, kept []string, set string) {
	last, recorded := meta[setKey]
	words := strings.Fields(last)
	var out []string
	for _, l := range ls {
		// A limit the daemon never recorded on its own asset (one a later
		// version added) is the daemon's to set.
		unrecorded := !slices.ContainsFunc(words, func(w string) bool { return strings.HasPrefix(w, l.name+"=") })
		owned := (ours && (!recorded || unrecorded)) || slices.Contains(words, l.word(l.have))
		v := l.want
		if !owned && l.have != l.want && wider(l.have, l.want) {
			v = l.have
			kept = append(kept, fmt.Sprintf("%s %d (asked %d)", l.name, l.have, l.want))
		}
		vals = append(vals, v)
		out = append(out, l.word(v))
	}
	return vals, kept, strings.Join(out, " ")
}

// mergeStream returns the stream config to run with, from the one stored
// (have) and the one the flags ask for (want), and what of want it does
// not apply because an operator set the stored value wider (mergeLimits).
func mergeStream(have, want jetstream.StreamConfig) (jetstream.StreamConfig, []string) {
	out := have
	ours := have.Description == want.Description
	out.Description, out.AllowDirect = want.Description, want.AllowDirect
	for _, s := range want.Subjects {
		if !slices.Contains(out.Subjects, s) {
			out.Subjects = append(out.Subjects, s)
		}
	}
	vals, kept, set := mergeLimits(have.Metadata, ours, []limit{
		{"replicas", int64(have.Replicas), int64(want.Replicas)},
		{"max_age", int64(have.MaxAge), int64(want.MaxAge)},
		{"max_bytes", have.MaxBytes, want.MaxBytes},
		{"max_msg_size", int64(have.MaxMsgSize), int64(want.MaxMsgSize)},
	})
	out.Replicas, out.MaxAge, out.MaxBytes, out.MaxMsgSize = int(vals[0]), time.Duration(vals[1]), vals[2], int32(vals[3])
	out.Metadata = maps.Clone(have.Metadata)
	if out.Metadata == nil {
		out.Metadata = map[string]string{}
	}
	out.Metadata[setKey] = set
	// The duplicate window may not exceed the max age.
	out.Duplicates = want.Duplicates
	if out.MaxAge > 0 && out.Duplicates > out.MaxAge {
		out.Duplicates = out.MaxAge
	}
	return out, kept
}

// setWords is the setKey value of limits set to their wanted values.
func setWords(ls ...limit) string {
	words := make([]string, len(ls))
	for i, l := range ls {
		words[i] = l.word(l.want)
	}
	return strings.Join(words, " ")
}

// ensureStream creates the stream cfg describes, or updates the existing
// one with mergeStream.
func ensureStream(ctx context.Context, js jetstream.JetStream, log *slog.Logger, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	var s jetstream.Stream
	err := retryAsset(ctx, log, "stream "+cfg.Name, func(ctx context.Context) error {
		var err error
		cfg.Metadata = map[string]string{setKey: setWords(
			limit{"replicas", 0, int64(cfg.Replicas)}, limit{"max_age", 0, int64(cfg.MaxAge)},
			limit{"max_bytes", 0, cfg.MaxBytes}, limit{"max_msg_size", 0, int64(cfg.MaxMsgSize)})}
		s, err = js.CreateStream(ctx, cfg)
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return err
		}
		if s, err = js.Stream(ctx, cfg.Name); err != nil {
			return err
		}
		have := s.CachedInfo().Config
		merged, kept := mergeStream(have, cfg)
		if len(kept) > 0 {
			log.Info("the stream keeps settings wider than the flags ask: lower them with the nats CLI if meant",
				"stream", cfg.Name, "kept", strings.Join(kept, ", "))
		}
		if sameStream(have, merged) {
			return nil
		}
		s, err = js.UpdateStream(ctx, merged)
		return err
	})
	return s, err
}

// sameStream reports whether two stream configs agree on what mergeStream
// may change.
func sameStream(a, b jetstream.StreamConfig) bool {
	return a.Description == b.Description && a.AllowDirect == b.AllowDirect && slices.Equal(a.Subjects, b.Subjects) &&
		a.Metadata[setKey] == b.Metadata[setKey] &&
		a.Replicas == b.Replicas && a.MaxAge == b.MaxAge && a.MaxBytes == b.MaxBytes &&
		a.MaxMsgSize == b.MaxMsgSize && a.Duplicates == b.Duplicates
}

// ensureKV creates the bucket cfg describes, or updates the existing one
// as ensureStream does a stream: replicas are never lowered, nor the TTL
// or the size cap unless exactTTL (the daemon owns it: the lease bucket's
// TTL is the lease's). With discardOld a full bucket drops its oldest
// keys to take a new one, where a bucket refuses the write by default.
func ensureKV(ctx context.Context, js jetstream.JetStream, log *slog.Logger, cfg jetstream.KeyValueConfig, exactTTL, discardOld bool) (jetstream.KeyValue, error) {
	var kv jetstream.KeyValue
	err := retryAsset(ctx, log, "kv "+cfg.Bucket, func(ctx context.Context) error {
		var err error
		cfg.Metadata = map[string]string{setKey: setWords(limit{"replicas", 0, int64(cfg.Replicas)}, limit{"ttl", 0, int64(cfg.TTL)},
			limit{"max_bytes", 0, cfg.MaxBytes})}
		kv, err = js.CreateKeyValue(ctx, cfg)
		if err == nil && discardOld {
			return discardOldest(ctx, js, cfg.Bucket)
		}
		if !errors.Is(err, jetstream.ErrBucketExists) {
			return err
		}
		if kv, err = js.KeyValue(ctx, cfg.Bucket); err != nil {
			return err
		}
		st, err := kv.Status(ctx)
		if err != nil {
			return err
		}
		have := st.(*jetstream.KeyValueBucketStatus).Config()
		out := have
		out.Description = cfg.Description
		ttlHave := int64(have.TTL)
		if exactTTL {
			ttlHave = int64(cfg.TTL) // the daemon's alone
		}
		vals, kept, set := mergeLimits(have.Metadata, have.Description == cfg.Description, []limit{
			{"replicas", int64(have.Replicas), int64(cfg.Replicas)},
			{"ttl", ttlHave, int64(cfg.TTL)},
			{"max_bytes", have.MaxBytes, cfg.MaxBytes},
		})
		out.Replicas, out.TTL, out.MaxBytes = int(vals[0]), time.Duration(vals[1]), vals[2]
		if exactTTL {
			out.TTL = cfg.TTL
		}
		out.Metadata = maps.Clone(have.Metadata)
		if out.Metadata == nil {
			out.Metadata = map[string]string{}
		}
		out.Metadata[setKey] = set
		if len(kept) > 0 {
			log.Info("the bucket keeps settings wider than the flags ask", "bucket", cfg.Bucket, "kept", strings.Join(kept, ", "))
		}
		if out.Replicas != have.Replicas || out.TTL != have.TTL || out.MaxBytes != have.MaxBytes ||
			out.Description != have.Description || out.Metadata[setKey] != have.Metadata[setKey] {
			if kv, err = js.UpdateKeyValue(ctx, out); err != nil {
				return err
			}
		}
		if discardOld {
			return discardOldest(ctx, js, cfg.Bucket)
		}
		return nil
	})
	return kv, err
}

// discardOldest makes bucket's stream drop its oldest keys when it is
// full rather than refuse a write: the ledger buckets' oldest keys belong
// to messages acknowledged long ago, which are not delivered again, and a
// refused write would stop every persona. The KV client creates (and
// updates) a bucket with DiscardNew and has no setting for it, so it is
// set on the stream underneath.
func discardOldest(ctx context.Context, js jetstream.JetStream, bucket string) error {
	s, err := js.Stream(ctx, "KV_"+bucket)
	if err != nil {
		return err
	}
	cfg := s.CachedInfo().Config
	if cfg.Discard == jetstream.DiscardOld {
		return nil
	}
	cfg.Discard = jetstream.DiscardOld
	_, err = js.UpdateStream(ctx, cfg)
	return err
}

// retryAsset runs op until it succeeds, fails on what no retry mends, or
// assetRetryFor passes: a cluster electing its JetStream leader, or still
// short of the peers a replicated asset needs, answers with timeouts and
// placement errors for a few seconds. Each failed attempt is logged.
func retryAsset(ctx context.Context, log *slog.Logger, what string, op func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, assetRetryFor)
	defer cancel()
	wait := 250 * time.Millisecond
	for {
		actx, acancel := context.WithTimeout(ctx, 5*time.Second)
		err := op(actx)
		acancel()
		if err == nil || !clusterNotReady(err) || ctx.Err() != nil {
			return err
		}
		log.Warn("the cluster does not take the asset yet; retrying", "asset", what, "retry_in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (gave up after %v)", err, assetRetryFor)
		case <-t.C:
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// clusterNotReady reports whether err is one a JetStream cluster answers
// while it elects a leader or waits for peers.
func clusterNotReady(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrJetStreamNotEnabled) {
		return true
	}
	s := strings.ToLower(err.Error())
	for _, m := range []string{"temporarily unavailable", "no suitable peers", "insufficient resources", "timeout", "no responders", "not enabled"} {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}
