package infraerr_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/omninode/onex-fleet/pkg/infraerr"
)

func ExampleSanitizeError() {
	err := infraerr.New(infraerr.KindConnection, infraerr.Context{Transport: infraerr.TransportDB},
		"connect", errors.New("dial postgresql://svc:hunter2@db:5432/reg: connection refused"))
	fmt.Println(infraerr.SanitizeError(err))
	fmt.Println(infraerr.SanitizeError(infraerr.New(infraerr.KindTimeout, infraerr.Context{}, "upsert", context.DeadlineExceeded)))
	fmt.Println(infraerr.RedactDSN("postgresql://svc:hunter2@db:5432/reg?sslmode=disable"))
	// Output:
	// InfraConnectionError: [REDACTED - potentially sensitive data]
	// InfraTimeoutError: upsert: context deadline exceeded
	// postgresql://svc@db:5432/reg?sslmode=disable
}

func ExampleRetriable() {
	fmt.Println(infraerr.Retriable(context.DeadlineExceeded))
	fmt.Println(infraerr.Retriable(infraerr.Content("payload.node_id", "not a UUID")))
	fmt.Println(infraerr.Retriable(errors.New("something unexpected")))
	// Output:
	// true
	// false
	// false
}
