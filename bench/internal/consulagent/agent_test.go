package consulagent

import (
	"context"
	"net/http"
	"os"
	"testing"
	"time"
)

// A paused agent answers nothing and keeps its state; resumed, it is its
// own leader again; paused again, Stop still ends it; a stopped agent
// cannot be paused.
func TestPauseResumeStop(t *testing.T) {
	bin, err := Bin()
	if err != nil {
		if os.Getenv("ONEX_REQUIRE_INFRA") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := Start(ctx, bin, t.TempDir(), "pause-test")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, "http://"+a.Addr+"/v1/kv/pause-test", http.NoBody)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	if err := a.Pause(); err != nil {
		t.Fatal(err)
	}
	quick := &http.Client{Timeout: 300 * time.Millisecond}
	if resp, err := quick.Get("http://" + a.Addr + "/v1/status/leader"); err == nil {
		resp.Body.Close()
		t.Fatal("a paused agent answered")
	}
	if err := a.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := a.Leader(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	resp, err = quick.Get("http://" + a.Addr + "/v1/kv/pause-test")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the key written before the pause: status %d, want 200", resp.StatusCode)
	}

	if err := a.Pause(); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan struct{})
	go func() { a.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("Stop of a paused agent did not return")
	}
	if err := a.Pause(); err == nil {
		t.Fatal("Pause of a stopped agent succeeded")
	}
}
