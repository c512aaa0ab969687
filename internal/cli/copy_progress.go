package cli

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/ferry-migrate/ferry/internal/engine"
)

// progress draws one live line: folders, messages, MB and rate.
type progress struct {
	mu      sync.Mutex
	w       io.Writer
	folders int
	start   time.Time
	last    engine.Progress
	done    chan struct{}
	wg      sync.WaitGroup
	tty     bool
}

func newProgress(w io.Writer, folders int) *progress {
	p := &progress{w: w, folders: folders, start: time.Now(), done: make(chan struct{}), tty: isTerminal(w)}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		every := time.Second
		if !p.tty {
			every = 10 * time.Second
		}
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-t.C:
				p.draw(false)
			}
		}
	}()
	return p
}

func (p *progress) update(pr engine.Progress) {
	p.mu.Lock()
	if pr.Stats.Objects+pr.Stats.Skipped+pr.Stats.Errors >= p.last.Stats.Objects+p.last.Stats.Skipped+p.last.Stats.Errors {
		p.last = pr
	}
	p.mu.Unlock()
}

func (p *progress) draw(final bool) {
	p.mu.Lock()
	s := p.last.Stats
	p.mu.Unlock()
	el := time.Since(p.start).Seconds()
	mb := float64(s.Bytes) / 1e6
	line := fmt.Sprintf("folders %d/%d  messages %d copied, %d unchanged, %d errors  %.1f MB  %.1f MB/s", s.Folders, p.folders, s.Objects, s.Skipped, s.Errors, mb, mb/max(el, 0.001))
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		if final {
			fmt.Fprintln(p.w)
		}
	} else if !final {
		fmt.Fprintln(p.w, line)
	}
}

func (p *progress) stop() {
	close(p.done)
	p.wg.Wait()
	p.draw(true)
}
