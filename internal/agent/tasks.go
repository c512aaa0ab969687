package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"

	"github.com/ferry-migrate/ferry/internal/model"
)

// Task is one reconfiguration of the workstation (Outlook, OneDrive, Teams, Office, Entra). Run
// must be idempotent: an agent stopped half-way runs it again. It keeps what a rollback needs
// under job.Backup, a directory of its own in the agent's data directory.
type Task interface {
	Run(ctx context.Context, job Job) (detail string, err error)
}

// Job is one run of a task: where its backup lives and what the workstation is switched to.
type Job struct {
	Backup string
	Target model.AgentTarget
}

// Undoer is a task that can put back what it changed, from its backup.
type Undoer interface {
	Rollback(ctx context.Context, backup string) (detail string, err error)
}

// ErrSkip, returned by a task, says there was nothing to do on this workstation (no Outlook
// installed, say): the task is Skipped, not failed.
var ErrSkip = errors.New("nothing to do here")

// Prompt is what the user is shown before the first task runs.
type Prompt = model.AgentPrompt

// runTasks runs the released tasks still to do, in the server's order, telling the server each
// task's state and uploading what happened. A task the platform has no code for is Skipped.
func (a *Agent) runTasks(ctx context.Context, st State, in model.AgentInstructions) error {
	var todo []model.DeviceTask
	for _, t := range in.Tasks {
		if t.Status == model.TaskWaiting || t.Status == model.TaskRunning {
			todo = append(todo, t) // Running: stopped half-way; tasks are idempotent
		}
	}
	if len(todo) == 0 {
		return nil
	}
	tasks, err := a.taskSet()
	if err != nil {
		return fmt.Errorf("tasks postponed: %w", err)
	}
	if a.AskUser != nil && in.Prompt != nil {
		if err := a.AskUser(ctx, *in.Prompt); err != nil {
			return fmt.Errorf("prompt: %w", err)
		}
	}
	var log []string
	for _, t := range todo {
		impl := tasks[t.Task]
		if script := map[string]string{model.StepPreScript: in.PreScript, model.StepPostScript: in.PostScript}[t.Task]; script != "" && a.RunScript != nil {
			impl = scriptTask{run: a.RunScript, script: script}
		}
		if impl == nil {
			if err := a.setTask(ctx, st, t.Task, model.TaskSkipped, "this agent has no "+t.Task+" task for its platform"); err != nil {
				return err
			}
			log = append(log, t.Task+": skipped, not supported on this platform")
			continue
		}
		if err := a.setTask(ctx, st, t.Task, model.TaskRunning, ""); err != nil {
			return err
		}
		backup := a.backup(t.Task)
		if err := os.MkdirAll(backup, 0o700); err != nil {
			return err
		}
		job := Job{Backup: backup}
		if in.Target != nil {
			job.Target = *in.Target
		}
		detail, err := impl.Run(ctx, job)
		status := model.TaskComplete
		switch {
		case errors.Is(err, ErrSkip):
			status, detail = model.TaskSkipped, err.Error()
		case err != nil:
			status, detail = model.TaskError, err.Error()
		}
		if err := a.setTask(ctx, st, t.Task, status, detail); err != nil {
			return err
		}
		log = append(log, fmt.Sprintf("%s: %s %s", t.Task, status, detail))
	}
	return a.uploadLog(ctx, st, log)
}

// backup is a task's backup directory.
func (a *Agent) backup(task string) string { return filepath.Join(a.Dir, "backup", task) }

func (a *Agent) taskSet() (map[string]Task, error) {
	if a.Workstation != nil {
		return a.Workstation()
	}
	return a.Tasks, nil
}

// scriptTask runs an administrator's pre- or post-script.
type scriptTask struct {
	run    func(ctx context.Context, script string) (string, error)
	script string
}

func (s scriptTask) Run(ctx context.Context, _ Job) (string, error) { return s.run(ctx, s.script) }

func (a *Agent) setTask(ctx context.Context, st State, task string, status model.TaskState, detail string) error {
	if len(detail) > 2000 { // the server keeps 2,000 characters; the log upload keeps the rest
		detail = detail[:1990] + " …(cut)"
	}
	code, err := a.post(ctx, "/agent/v1/tasks", st.Credential, map[string]any{"task": task, "status": status, "detail": detail}, nil)
	switch {
	case err != nil:
		return err
	case code == http.StatusUnauthorized:
		return ErrRevoked
	case code != http.StatusNoContent:
		return fmt.Errorf("task %s: server answered %d", task, code)
	}
	return nil
}

func (a *Agent) uploadLog(ctx context.Context, st State, lines []string) error {
	if len(lines) == 0 {
		return nil
	}
	code, err := a.post(ctx, "/agent/v1/logs", st.Credential, map[string]any{"lines": lines}, nil)
	if err == nil && code != http.StatusNoContent {
		err = fmt.Errorf("log upload: server answered %d", code)
	}
	return err
}

// Rollback undoes the named tasks (all of them when none is named) in the reverse of their order,
// from their backups. It runs on the workstation, without the server: an administrator or a
// support engineer starts it (ferry-agent rollback) when a switched-over workstation must go back.
func (a *Agent) Rollback(ctx context.Context, names ...string) ([]string, error) {
	if len(names) == 0 {
		names = model.AgentTasks
	}
	tasks, err := a.taskSet()
	if err != nil {
		return nil, err
	}
	var out []string
	for i := len(model.AgentTasks) - 1; i >= 0; i-- {
		name := model.AgentTasks[i]
		u, ok := tasks[name].(Undoer)
		if !ok || !slices.Contains(names, name) {
			continue
		}
		backup := a.backup(name)
		if _, err := os.Stat(backup); errors.Is(err, os.ErrNotExist) {
			out = append(out, name+": nothing to roll back")
			continue
		}
		detail, err := u.Rollback(ctx, backup)
		if err != nil {
			return out, fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, name+": "+detail)
	}
	return out, nil
}
