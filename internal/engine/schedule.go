package engine

import (
	"context"
	"errors"
	"time"

	"github.com/ferry-migrate/ferry/internal/model"
	"github.com/ferry-migrate/ferry/internal/store"
)

// Schedule stores a pass to start at a time, optionally repeating until a cutover time.
func (e *Engine) Schedule(ctx context.Context, sc model.Schedule) (model.Schedule, error) {
	return e.st.CreateSchedule(ctx, sc)
}

func (e *Engine) scheduleLoop() {
	defer close(e.schedDone)
	t := time.NewTicker(e.cfg.ScheduleEvery)
	defer t.Stop()
	rescue := time.NewTicker(e.cfg.Lease)
	defer rescue.Stop()
	for {
		e.fireDue(context.Background(), time.Now())
		select {
		case <-e.stopSched:
			return
		case <-t.C:
		case <-rescue.C:
			e.rescue(context.Background(), time.Now())
		}
	}
}

// fireDue starts every schedule whose time has come. The store's conditional advance makes sure
// only one process fires each occurrence.
func (e *Engine) fireDue(ctx context.Context, now time.Time) {
	due, err := e.st.DueSchedules(ctx, now)
	if err != nil {
		e.log.Warn("read schedules", "err", err)
		return
	}
	for _, sc := range due {
		fired, err := e.st.AdvanceSchedule(ctx, sc, now)
		if err != nil || !fired {
			continue
		}
		_, _, err = e.StartPass(ctx, store.PassRequest{ProjectID: sc.ProjectID, Type: sc.PassType, Actor: "schedule/" + sc.ID + " by " + sc.CreatedBy,
			ItemIDs: sc.ItemIDs, OlderThan: sc.OlderThan})
		outcome, detail := "ok", string(sc.PassType)
		if err != nil {
			outcome, detail = "skipped", err.Error()
			if !errors.Is(err, store.ErrNothingToDo) {
				outcome = "error"
			}
		}
		e.st.Event(ctx, model.Event{Actor: "scheduler", Object: "project/" + sc.ProjectID, Action: "schedule.fire", Outcome: outcome, Detail: detail})
	}
}
