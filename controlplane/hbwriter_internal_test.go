package controlplane

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/poolagent/poolagent/controlplane/store"
)

// batchStore records the size of every ApplyHeartbeats batch; call
// number hold (from 1) waits for release.
type batchStore struct {
	store.Store
	mu      sync.Mutex
	sizes   []int
	hold    int
	release chan struct{}
}

func (s *batchStore) ApplyHeartbeats(_ context.Context, hbs []store.Heartbeat) error {
	s.mu.Lock()
	s.sizes = append(s.sizes, len(hbs))
	held := len(s.sizes) == s.hold
	s.mu.Unlock()
	if held {
		<-s.release
	}
	return nil
}

func (s *batchStore) batches() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sizes)
}

// The heartbeat writer holds a small batch back for company only while
// writes arrive together: a write after a quiet spell, and writes one
// after the other, go at once (with an hour's linger, a held write would
// never return).
func TestHBWriterLingersOnlyUnderLoad(t *testing.T) {
	st := &batchStore{hold: 3, release: make(chan struct{})}
	m := &metrics{storeLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "x"}, []string{"op"})}
	w := newHBWriter(st, zap.NewNop(), m)
	defer w.close()
	w.linger, w.lingerBatch = time.Hour, 3
	ctx := context.Background()
	write := func(id string, wg *sync.WaitGroup) {
		defer wg.Done()
		if err := w.write(ctx, store.Heartbeat{ClientID: id}); err != nil {
			t.Error(err)
		}
	}
	waitTaken := func() { // the writer has taken every queued write
		for len(w.reqs) > 0 {
			time.Sleep(time.Millisecond)
		}
	}

	// One host's writes one after the other are never held.
	var wg sync.WaitGroup
	for _, id := range []string{"a", "b"} {
		wg.Add(1)
		write(id, &wg)
	}
	// A write after them is written alone, at once; two that queue
	// behind it are written together.
	wg.Add(3)
	go write("c", &wg)
	for len(st.batches()) < 3 {
		time.Sleep(time.Millisecond)
	}
	go write("d", &wg)
	go write("e", &wg)
	for len(w.reqs) < 2 {
		time.Sleep(time.Millisecond)
	}
	close(st.release)
	wg.Wait()
	// That batch held two: the next small one waits for company.
	wg.Add(3)
	go write("f", &wg)
	waitTaken()
	time.Sleep(20 * time.Millisecond) // f would be written alone by now without the linger
	go write("g", &wg)
	go write("h", &wg)
	wg.Wait()
	if got, want := st.batches(), []int{1, 1, 1, 2, 3}; !slices.Equal(got, want) {
		t.Fatalf("batches %v, want %v", got, want)
	}
}
