package backend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/hashicorp/consul/api"
)

// MaxTxnOps is Consul's limit of operations in one transaction.
const MaxTxnOps = 64

// TxnRolledBack is a transaction Consul refused as a whole (HTTP 409):
// nothing of it was applied. Errors name the operations that failed, by
// index in the transaction, with Consul's reason.
type TxnRolledBack struct {
	Errors []*api.TxnError
}

func (e *TxnRolledBack) Error() string {
	parts := make([]string, 0, len(e.Errors))
	for _, te := range e.Errors {
		parts = append(parts, fmt.Sprintf("op %d: %s", te.OpIndex, te.What))
	}
	return "consul transaction rolled back: " + strings.Join(parts, "; ")
}

// Denied reports whether Consul refused an operation for the token's
// rights: a transaction's ACL refusals are reasons in the rollback, not an
// HTTP 403.
func (e *TxnRolledBack) Denied() bool {
	for _, te := range e.Errors {
		if strings.Contains(te.What, "Permission denied") {
			return true
		}
	}
	return false
}

// Txn applies ops in one Consul transaction: one Raft entry, all or
// nothing, which costs Consul far less per operation than a call per
// write. op labels the call in the metrics and is a write ("txn", or
// register or deregister). A rollback is a classified *TxnRolledBack: authentication
// when the token may not write what an operation names (so it counts for
// the breaker as a refused write does), request rejected otherwise.
//
// The request goes through the raw client: the API client's own Txn call
// turns every answer but 200 and 409 into an untyped error, losing the
// status code that classifies a refused token (403), an overloaded agent
// (429) or a Consul without a leader (5xx).
func (c *Client) Txn(ctx context.Context, op string, ops api.TxnOps) error {
	return c.do(ctx, op, func(q *api.QueryOptions) error {
		_, err := c.api.Raw().Write("/v1/txn", ops, nil, writeOptions(q))
		var se api.StatusError
		if errors.As(err, &se) && se.Code == http.StatusConflict {
			var resp api.TxnResponse
			if jerr := json.Unmarshal([]byte(se.Body), &resp); jerr != nil {
				return err
			}
			return &TxnRolledBack{Errors: resp.Errors}
		}
		return err
	})
}
