package inspect

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/stats"

	"github.com/ckpt2core/ckpt2core/criuimg"
)

// MaxStatsSize bounds a stats image (one small protobuf entry).
const MaxStatsSize = 1 << 20

// ParseStats decodes a CRIU statistics image (stats-dump or
// stats-restore: the service magic, the STATS magic, then one
// size-prefixed stats_entry). name is used in errors. Either result may be
// nil if the entry lacks that part.
func ParseStats(name string, b []byte) (*DumpStats, *RestoreStats, error) {
	if len(b) > MaxStatsSize {
		return nil, nil, fmt.Errorf("%s: %d bytes, more than a stats image can hold", name, len(b))
	}
	f := &memFile{name: name, r: bytes.NewReader(b)}
	r, err := criuimg.NewReader(f, criuimg.MagicStats)
	if err != nil {
		return nil, nil, err
	}
	e := &stats.StatsEntry{}
	if err := r.Next(e); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, fmt.Errorf("%s: no stats entry", name)
		}
		return nil, nil, err
	}
	var ds *DumpStats
	if d := e.GetDump(); d != nil {
		ds = &DumpStats{
			FreezingTimeUS:       d.GetFreezingTime(),
			FrozenTimeUS:         d.GetFrozenTime(),
			MemdumpTimeUS:        d.GetMemdumpTime(),
			MemwriteTimeUS:       d.GetMemwriteTime(),
			IrmapResolveUS:       d.GetIrmapResolve(),
			PagesScanned:         d.GetPagesScanned(),
			PagesSkippedParent:   d.GetPagesSkippedParent(),
			PagesWritten:         d.GetPagesWritten(),
			PagesLazy:            d.GetPagesLazy(),
			PagePipes:            d.GetPagePipes(),
			PagePipeBufs:         d.GetPagePipeBufs(),
			ShpagesScanned:       d.GetShpagesScanned(),
			ShpagesSkippedParent: d.GetShpagesSkippedParent(),
			ShpagesWritten:       d.GetShpagesWritten(),
		}
	}
	var rs *RestoreStats
	if x := e.GetRestore(); x != nil {
		rs = &RestoreStats{
			PagesCompared:   x.GetPagesCompared(),
			PagesSkippedCOW: x.GetPagesSkippedCow(),
			PagesRestored:   x.GetPagesRestored(),
			ForkingTimeUS:   x.GetForkingTime(),
			RestoreTimeUS:   x.GetRestoreTime(),
		}
	}
	return ds, rs, nil
}

// memFile is a criuimg.File over bytes in memory.
type memFile struct {
	name string
	r    *bytes.Reader
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) { return f.r.ReadAt(p, off) }
func (f *memFile) Close() error                            { return nil }
func (f *memFile) Name() string                            { return f.name }
func (f *memFile) Size() int64                             { return f.r.Size() }
