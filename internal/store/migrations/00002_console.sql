-- +goose Up
-- The console's dashboard sums recently finished runs; its live view asks for recently changed items.
CREATE INDEX runs_finished ON runs (finished_at);
CREATE INDEX items_project_updated ON items (project_id, updated_at);

-- +goose Down
DROP INDEX items_project_updated;
DROP INDEX runs_finished;
