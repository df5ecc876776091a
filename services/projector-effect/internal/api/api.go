// Package api serves onex.registry.v1.RegistryService over the projection:
// GetNode, ListNodes (filtered, keyset-paged by node id) and WatchNodes (the
// change feed of store.Changes, woken by the table's NOTIFY trigger and
// polled as a fallback).
//
// Errors reaching clients are sanitized (infraerr.SanitizeError): a database
// failure is UNAVAILABLE with the error class and a safe message, never a DSN.
package api

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/omninode/onex-fleet/pkg/infraerr"
	registryv1 "github.com/omninode/onex-fleet/proto/onex/registry/v1"
	"github.com/omninode/onex-fleet/services/projector-effect/internal/store"
)

// Page sizes of ListNodes.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// Server implements registryv1.RegistryServiceServer.
type Server struct {
	registryv1.UnimplementedRegistryServiceServer
	store    *store.Store
	notifier *store.Notifier
	log      *slog.Logger
	// Poll is the change feed's fallback poll interval (default 1 s);
	// notifications make changes show up sooner.
	Poll time.Duration
	// Checkpoint is how often an idle watch receives a checkpoint with a
	// fresh resume token (default 10 s).
	Checkpoint time.Duration
}

// New returns a server over s. notifier may be nil (then watches only poll).
func New(s *store.Store, notifier *store.Notifier, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	return &Server{store: s, notifier: notifier, log: log, Poll: time.Second, Checkpoint: 10 * time.Second}
}

// Register adds the service to g.
func (s *Server) Register(g *grpc.Server) { registryv1.RegisterRegistryServiceServer(g, s) }

func dbError(err error) error {
	if errors.Is(err, context.Canceled) {
		return status.Error(codes.Canceled, "cancelled")
	}
	if k, _ := infraerr.KindOf(err); k == infraerr.KindTimeout || errors.Is(err, context.DeadlineExceeded) {
		return status.Error(codes.DeadlineExceeded, infraerr.SanitizeError(err))
	}
	return status.Error(codes.Unavailable, infraerr.SanitizeError(err))
}

// GetNode implements RegistryService.GetNode.
func (s *Server) GetNode(ctx context.Context, req *registryv1.GetNodeRequest) (*registryv1.GetNodeResponse, error) {
	id, err := uuid.Parse(strings.TrimSpace(req.GetNodeId()))
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, "node_id: not a UUID")
	}
	r, err := s.store.Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, status.Errorf(codes.NotFound, "node %s is not registered", id)
	}
	if err != nil {
		return nil, dbError(err)
	}
	return &registryv1.GetNodeResponse{Node: ToProto(r)}, nil
}

// StateName returns the projection's state for an enum value ("" for
// UNSPECIFIED or an unknown value).
func StateName(st registryv1.RegistrationState) string {
	n, ok := registryv1.RegistrationState_name[int32(st)]
	if !ok || st == registryv1.RegistrationState_REGISTRATION_STATE_UNSPECIFIED {
		return ""
	}
	return strings.ToLower(strings.TrimPrefix(n, "REGISTRATION_STATE_"))
}

// StateValue returns the enum value of a projection state, accepting
// "active", "ACTIVE" and "REGISTRATION_STATE_ACTIVE".
func StateValue(s string) (registryv1.RegistrationState, bool) {
	u := strings.ToUpper(strings.TrimSpace(s))
	if !strings.HasPrefix(u, "REGISTRATION_STATE_") {
		u = "REGISTRATION_STATE_" + u
	}
	v, ok := registryv1.RegistrationState_value[u]
	return registryv1.RegistrationState(v), ok && v != 0
}

// A page token is "p2:<filter digest>:<last node id>", base64url. The
// digest binds it to the filters it was issued for, so that a token used
// with other filters is refused instead of silently skipping nodes. Tokens
// of the first form ("p1:<last node id>", issued before the digest) are
// still taken, without the check, so that a listing that spans an upgrade
// continues.
const (
	pageTokenPrefix       = "p2:"
	legacyPageTokenPrefix = "p1:"
)

// filterDigest identifies a normalized filter: the same rows, the same
// digest, whatever the order or repeats of its list values.
func filterDigest(f store.Filter) string {
	n := f.Normalized()
	var b strings.Builder
	for _, part := range [][]string{{n.State}, {n.NodeType}, {n.Capability}, n.CapabilityTags, n.Protocols, n.IntentTypes, {n.ContractType}} {
		// Length-prefixed, so that no two filters share an encoding.
		fmt.Fprintf(&b, "%d;", len(part))
		for _, v := range part {
			fmt.Fprintf(&b, "%d:%s", len(v), v)
		}
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:8])
}

func encodePageToken(f store.Filter, after uuid.UUID) string {
	return base64.RawURLEncoding.EncodeToString([]byte(pageTokenPrefix + filterDigest(f) + ":" + after.String()))
}

// errTokenFilters: the token is this API's, but for other filters.
var errTokenFilters = errors.New("page token of other filters")

func decodePageToken(tok string, f store.Filter) (uuid.UUID, error) {
	if tok == "" {
		return uuid.Nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return uuid.Nil, errors.New("bad page token")
	}
	s := string(b)
	switch {
	case strings.HasPrefix(s, legacyPageTokenPrefix):
		return uuid.Parse(strings.TrimPrefix(s, legacyPageTokenPrefix))
	case strings.HasPrefix(s, pageTokenPrefix):
		digest, id, ok := strings.Cut(strings.TrimPrefix(s, pageTokenPrefix), ":")
		if !ok {
			return uuid.Nil, errors.New("bad page token")
		}
		after, err := uuid.Parse(id)
		if err != nil {
			return uuid.Nil, err
		}
		if digest != filterDigest(f) {
			return uuid.Nil, errTokenFilters
		}
		return after, nil
	}
	return uuid.Nil, errors.New("bad page token")
}

// listFilter returns the store filter of a ListNodes request, or an
// INVALID_ARGUMENT status naming the field at fault.
func listFilter(req *registryv1.ListNodesRequest) (store.Filter, error) {
	if _, ok := registryv1.RegistrationState_name[int32(req.GetState())]; !ok {
		return store.Filter{}, status.Error(codes.InvalidArgument, "state: unknown value")
	}
	trim := func(vs []string) []string {
		if len(vs) == 0 {
			return nil
		}
		out := make([]string, len(vs))
		for i, v := range vs {
			out[i] = strings.TrimSpace(v)
		}
		return out
	}
	f := store.Filter{
		State: StateName(req.GetState()), NodeType: strings.TrimSpace(req.GetNodeType()), Capability: strings.TrimSpace(req.GetCapability()),
		CapabilityTags: trim(req.GetCapabilityTags()), Protocols: trim(req.GetProtocols()), IntentTypes: trim(req.GetIntentTypes()),
		ContractType: strings.TrimSpace(req.GetContractType()),
	}
	if err := f.Validate(); err != nil {
		return store.Filter{}, status.Error(codes.InvalidArgument, err.Error())
	}
	return f, nil
}

// ListNodes implements RegistryService.ListNodes.
func (s *Server) ListNodes(ctx context.Context, req *registryv1.ListNodesRequest) (*registryv1.ListNodesResponse, error) {
	size := int(req.GetPageSize())
	switch {
	case size < 0:
		return nil, status.Error(codes.InvalidArgument, "page_size: must be >= 0")
	case size == 0:
		size = DefaultPageSize
	case size > MaxPageSize:
		size = MaxPageSize
	}
	f, err := listFilter(req)
	if err != nil {
		return nil, err
	}
	after, err := decodePageToken(req.GetPageToken(), f)
	switch {
	case errors.Is(err, errTokenFilters):
		return nil, status.Error(codes.InvalidArgument, "page_token: issued for other filters; list again from the first page")
	case err != nil:
		return nil, status.Error(codes.InvalidArgument, "page_token: not a token of this API")
	}
	// One row more than asked tells whether there is a next page.
	rows, err := s.store.List(ctx, f.Normalized(), after, size+1)
	if err != nil {
		return nil, dbError(err)
	}
	resp := &registryv1.ListNodesResponse{}
	if len(rows) > size {
		rows = rows[:size]
		resp.NextPageToken = encodePageToken(f, rows[size-1].NodeID)
	}
	for _, r := range rows {
		resp.Nodes = append(resp.Nodes, ToProto(r))
	}
	return resp, nil
}

const watchTokenPrefix = "w1:"

// EncodeWatchToken returns the resume token of a change-feed cursor.
func EncodeWatchToken(xid uint64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(watchTokenPrefix + strconv.FormatUint(xid, 10)))
}

// DecodeWatchToken parses a resume token.
func DecodeWatchToken(tok string) (uint64, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || !strings.HasPrefix(string(b), watchTokenPrefix) {
		return 0, errors.New("bad resume token")
	}
	return strconv.ParseUint(strings.TrimPrefix(string(b), watchTokenPrefix), 10, 64)
}

// watchPage bounds one read of the change feed.
const watchPage = 500

// WatchNodes implements RegistryService.WatchNodes.
//
// The cursor is a transaction-id horizon (store.Horizon): every row written
// by a transaction below it has been sent. Each poll reads the rows at or
// above the cursor, sends those not sent in that version yet, and moves the
// cursor to the poll's horizon. A node message carries the cursor from
// before its poll, so resuming with it may repeat messages but never skips
// one; a checkpoint carries the cursor after the poll.
func (s *Server) WatchNodes(req *registryv1.WatchNodesRequest, stream grpc.ServerStreamingServer[registryv1.WatchNodesResponse]) error {
	ctx := stream.Context()
	var cursor uint64
	switch {
	case req.GetResumeToken() != "":
		c, err := DecodeWatchToken(req.GetResumeToken())
		if err != nil {
			return status.Error(codes.InvalidArgument, "resume_token: not a token of this API")
		}
		cursor = c
	case req.GetSendInitial():
		cursor = 0
	default:
		h, err := s.store.Horizon(ctx)
		if err != nil {
			return dbError(err)
		}
		cursor = h
	}
	// The first checkpoint tells the client where it stands even if nothing
	// changes for a while.
	if err := stream.Send(&registryv1.WatchNodesResponse{ResumeToken: EncodeWatchToken(cursor)}); err != nil {
		return err
	}
	sent := map[uuid.UUID]uint64{}
	lastCheckpoint := time.Now()
	var lastPoll time.Time
	for failures := 0; ; {
		var changed <-chan struct{}
		if s.notifier != nil {
			// Taken before the poll, so a change committed during the poll
			// wakes the next one.
			changed = s.notifier.Changed()
		}
		lastPoll = time.Now()
		next, n, err := s.poll(ctx, stream, cursor, sent)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.As(err, new(sendError)):
			return err // the stream itself failed
		case err != nil:
			failures++
			s.log.Warn("watch poll failed; retrying", "error", infraerr.SanitizeError(err), "failures", failures)
		default:
			failures = 0
			if next > cursor {
				cursor = next
				for id, x := range sent {
					if x < cursor {
						delete(sent, id)
					}
				}
				if n > 0 || time.Since(lastCheckpoint) >= s.Checkpoint {
					if err := stream.Send(&registryv1.WatchNodesResponse{ResumeToken: EncodeWatchToken(cursor)}); err != nil {
						return err
					}
					lastCheckpoint = time.Now()
				}
			}
		}
		wait := s.Poll
		if failures > 0 {
			wait = min(time.Duration(failures)*s.Poll, 10*time.Second)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-changed:
		case <-t.C:
		}
		t.Stop()
		// Bound the poll rate under a storm of commits.
		if d := 50*time.Millisecond - time.Since(lastPoll); d > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(d):
			}
		}
	}
}

// poll sends the rows changed at or after cursor that were not sent in
// that version yet, and returns the new cursor and how many it sent.
// Database errors are returned as they are, stream errors as sendError.
func (s *Server) poll(ctx context.Context, stream grpc.ServerStreamingServer[registryv1.WatchNodesResponse], cursor uint64, sent map[uuid.UUID]uint64) (uint64, int, error) {
	pos := store.Position{XID: cursor}
	if cursor > 0 {
		// Positions are exclusive; start just before the cursor's first row.
		pos = store.Position{XID: cursor - 1, NodeID: maxUUID}
	}
	var horizon uint64
	n := 0
	token := EncodeWatchToken(cursor)
	for first := true; ; first = false {
		rows, h, err := s.store.Changes(ctx, pos, watchPage)
		if err != nil {
			return 0, n, err
		}
		if first {
			// Only the first read's horizon is safe: later pages see
			// transactions that committed after the first read began.
			horizon = h
		}
		for _, r := range rows {
			if x, ok := sent[r.NodeID]; ok && x == r.ChangeXID {
				continue
			}
			if err := stream.Send(&registryv1.WatchNodesResponse{Node: ToProto(r), ResumeToken: token}); err != nil {
				return 0, n, sendError{err}
			}
			sent[r.NodeID] = r.ChangeXID
			n++
		}
		if len(rows) < watchPage {
			return max(horizon, cursor), n, nil
		}
		last := rows[len(rows)-1]
		pos = store.Position{XID: last.ChangeXID, NodeID: last.NodeID}
	}
}

// sendError is a failure of the stream itself (the client went away).
type sendError struct{ err error }

func (e sendError) Error() string { return fmt.Sprintf("send: %v", e.err) }
func (e sendError) Unwrap() error { return e.err }

var maxUUID = uuid.UUID{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

func ts(t *time.Time) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return timestamppb.New(*t)
}

// ToProto converts a projection row.
func ToProto(r *store.Row) *registryv1.Node {
	st, _ := StateValue(r.State)
	n := &registryv1.Node{
		NodeId: r.NodeID.String(), Domain: r.Domain, State: st, NodeType: r.NodeType, NodeName: r.NodeName,
		NodeVersion: r.NodeVersion, CapabilitiesJson: string(r.Capabilities), Endpoints: r.Endpoints,
		CapabilityTags: r.CapabilityTags, IntentTypes: r.IntentTypes, Protocols: r.Protocols,
		ContractType: r.ContractType, ContractVersion: r.ContractVersion,
		RegistrationAttemptId: r.AttemptID.String(),
		RegisteredAt:          timestamppb.New(r.RegisteredAt), UpdatedAt: timestamppb.New(r.UpdatedAt),
		AckDeadline: ts(r.AckDeadline), LivenessDeadline: ts(r.LivenessDeadline), LastHeartbeatAt: ts(r.LastHeartbeatAt),
		AckTimeoutEmittedAt: ts(r.AckTimeoutEmittedAt), LivenessTimeoutEmittedAt: ts(r.LivenessTimeoutEmittedAt),
		Sequence: r.Sequence, RegistrationSequence: r.RegistrationSequence,
		SubscribeTopics: r.SubscribeTopics, PublishTopics: r.PublishTopics, IntrospectionExtrasJson: extrasJSON(r.IntrospectionExtras),
	}
	if r.CorrelationID != nil {
		c := r.CorrelationID.String()
		n.CorrelationId = &c
	}
	return n
}

// extrasJSON is the row's introspection_extras as the API shows it: "{}"
// when the column is empty.
func extrasJSON(x []byte) string {
	if len(x) == 0 || string(x) == "null" {
		return "{}"
	}
	return string(x)
}
