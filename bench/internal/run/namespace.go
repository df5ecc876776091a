package run

import (
	"context"
	"fmt"
	"time"

	"github.com/IBM/sarama"

	"github.com/omninode/onex-fleet/pkg/topicns"
	"github.com/omninode/onex-fleet/pkg/topics"
)

// A run works in a topic namespace of its own (KAFKA_TOPIC_NAMESPACE, its
// environment name): it creates every registry topic there first and
// deletes them at the end, so it leaves nothing on the topics `make run`
// and a deployment use, and reads nothing other runs or test suites left.
// Its snapshot and aggregation state topics are its own for the same
// reason, without the per-run topic overrides the services once needed.

// runNamespace is the namespace of the run whose environment is env.
func runNamespace(env string) (topicns.Namespace, error) {
	ns, err := topicns.Parse(env)
	if err != nil {
		return topicns.None, fmt.Errorf("the run's environment %q as a topic namespace: %w", env, err)
	}
	return ns, nil
}

// provisionTopics creates the registry's topics on ns, as `onexctl topics
// provision` would with KAFKA_TOPIC_NAMESPACE set, and waits until the
// broker lists them all (creation is asynchronous).
func provisionTopics(ctx context.Context, brokers []string, ns topicns.Namespace) error {
	admin, err := sarama.NewClusterAdmin(brokers, adminConfig())
	if err != nil {
		return err
	}
	defer admin.Close()
	specs := topics.Platform()
	if _, err := topics.Provision(ctx, admin, specs, topics.Options{ReplicationFactor: 1, Namespace: ns}); err != nil {
		return fmt.Errorf("create the run's topics: %w", err)
	}
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = ns.Physical(s.Name)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		mds, err := admin.DescribeTopics(names)
		ok := err == nil && len(mds) == len(names)
		for _, md := range mds {
			ok = ok && md.Err == sarama.ErrNoError && len(md.Partitions) > 0
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the run's topics are not visible after a minute: %v", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// deleteTopics deletes every topic on ns the broker has: the registry's and
// whatever else the run created there.
func deleteTopics(brokers []string, ns topicns.Namespace) error {
	if ns == topicns.None {
		return fmt.Errorf("refusing to delete the topics of no namespace")
	}
	admin, err := sarama.NewClusterAdmin(brokers, adminConfig())
	if err != nil {
		return err
	}
	defer admin.Close()
	all, err := admin.ListTopics()
	if err != nil {
		return err
	}
	var errs []error
	for name := range all {
		if ns.Canonical(name) != name {
			if err := admin.DeleteTopic(name); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("delete the run's topics: %v", errs)
	}
	return nil
}
