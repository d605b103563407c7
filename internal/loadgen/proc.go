package loadgen

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// clockTick is the unit of utime and stime in /proc/<pid>/stat: USER_HZ,
// which Linux fixes at 100 per second for user space on every
// architecture, whatever the kernel's own HZ.
const clockTick = 10 * time.Millisecond

// procCPU returns the CPU time (user + system, all threads) process pid
// has used so far, from /proc/<pid>/stat.
func procCPU(pid int) (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu of process %d: %w", pid, err)
	}
	return parseProcStat(raw)
}

// parseProcStat reads utime and stime (fields 14 and 15) of a
// /proc/<pid>/stat line. The command name (field 2) is in parentheses and
// may itself hold spaces or parentheses, so fields are counted from the
// last ')'.
func parseProcStat(raw []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, errors.New("/proc stat: no command name")
	}
	// After ") " come field 3 (state), 4, …: utime is the 12th of them.
	f := bytes.Fields(raw[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat: %d fields after the command name, want at least 13", len(f))
	}
	utime, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	stime, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc stat: utime/stime: %w", err)
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// machineCPU returns the busy and total CPU time of the whole machine
// (all cores, every process, not only the stack's) from /proc/stat, so
// that the report can say how much of the machine others used.
func machineCPU() (busy, total time.Duration, err error) {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, fmt.Errorf("machine cpu: %w", err)
	}
	return parseMachineStat(raw)
}

// parseMachineStat reads the first "cpu" line of /proc/stat: busy is every
// column but idle and iowait; guest time is already inside user.
func parseMachineStat(raw []byte) (busy, total time.Duration, err error) {
	line, _, _ := bytes.Cut(raw, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 5 || string(f[0]) != "cpu" {
		return 0, 0, errors.New("/proc/stat: no cpu line")
	}
	var sum, idle int64
	// user nice system idle iowait irq softirq steal (guest, guest_nice
	// are counted in user and nice already).
	for i, col := range f[1:min(len(f), 9)] {
		v, err := strconv.ParseInt(string(col), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: column %d: %w", i+1, err)
		}
		sum += v
		if i == 3 || i == 4 {
			idle += v
		}
	}
	return time.Duration(sum-idle) * clockTick, time.Duration(sum) * clockTick, nil
}

// loadAverage is the first field of /proc/loadavg (the 1-minute load), or
// "" where there is none.
func loadAverage() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := bytes.Fields(raw)
	if len(f) < 3 {
		return ""
	}
	return string(bytes.Join(f[:3], []byte(" ")))
}
