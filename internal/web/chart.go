package web

import (
	"encoding/json"
	"fmt"

	"github.com/ferry-migrate/ferry/internal/engine"
	"github.com/ferry-migrate/ferry/internal/model"
	"github.com/ferry-migrate/ferry/internal/store"
)

// chart is a bar chart of bytes moved per hour, drawn by the template as inline SVG.
type chart struct {
	Width, Height, Base int
	Bars                []bar
	Max                 string // the top of the scale, for the axis label
	Total               string
	Objects             int64
	Empty               bool
}

type bar struct {
	X, Y, W, H int
	Label      string // hour, under every sixth bar
	Title      string // the tooltip and the accessible text
}

func throughputChart(hours []store.HourBucket) chart {
	const width, height, base, pad = 720, 180, 150, 30
	c := chart{Width: width, Height: height, Base: base, Empty: true}
	var max, total int64
	for _, h := range hours {
		total += h.Bytes
		c.Objects += h.Objects
		if h.Bytes > max {
			max = h.Bytes
		}
	}
	c.Total, c.Max = humanBytes(total), humanBytes(max)
	if len(hours) == 0 {
		return c
	}
	c.Empty = total == 0 && c.Objects == 0
	slot := (width - pad) / len(hours)
	for i, h := range hours {
		b := bar{X: pad + i*slot + 1, W: slot - 2}
		if max > 0 {
			b.H = int(h.Bytes * (base - 10) / max)
		}
		if h.Bytes > 0 && b.H < 1 {
			b.H = 1
		}
		b.Y = base - b.H
		if i%6 == 0 {
			b.Label = h.Start.UTC().Format("15:04")
		}
		b.Title = fmt.Sprintf("%s UTC: %s, %d objects, %d runs", h.Start.UTC().Format("Jan 2 15:04"), humanBytes(h.Bytes), h.Objects, h.Runs)
		c.Bars = append(c.Bars, b)
	}
	return c
}

// folderRow is one line of an item's per-folder statistics and reconciliation.
type folderRow struct {
	engine.FolderResult
	Pass model.PassType
}

// latestFolders reads the per-folder results of the newest run that has them.
func latestFolders(runs []model.Run) []folderRow {
	for _, r := range runs {
		var fs []engine.FolderResult
		if json.Unmarshal(r.Folders, &fs) != nil || len(fs) == 0 {
			continue
		}
		out := make([]folderRow, len(fs))
		for i, f := range fs {
			out[i] = folderRow{FolderResult: f, Pass: r.PassType}
		}
		return out
	}
	return nil
}
