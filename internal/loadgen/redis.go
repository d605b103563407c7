package loadgen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisServer is the bench's private redis-server: a unix socket in the
// bench's folder, no TCP port, nothing persisted, killed at the end. It is
// internal/testredis without the testing.T, which only tests may use.
type redisServer struct {
	socket string
	cmd    *exec.Cmd
	done   chan struct{}
	log    string
}

// startRedis starts redis-server in dir and waits until it answers PING.
func startRedis(ctx context.Context, dir string) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New("-store redis needs redis-server on PATH; run `make deps` (apt-get install redis-server)")
	}
	s := &redisServer{socket: filepath.Join(dir, "redis.sock"), log: filepath.Join(dir, "redis.log"), done: make(chan struct{})}
	s.cmd = exec.Command(bin,
		"--port", "0",
		"--unixsocket", s.socket,
		"--unixsocketperm", "700",
		"--dir", dir,
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--logfile", s.log,
		"--loglevel", "warning",
	)
	setDeathSignal(s.cmd)
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	c := s.client()
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := c.Ping(ctx).Err()
		if err == nil {
			return s, nil
		}
		select {
		case <-s.done:
			log, _ := os.ReadFile(s.log)
			return nil, fmt.Errorf("redis-server exited at start: %s", log)
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			s.stop()
			return nil, fmt.Errorf("redis-server on %s not ready within 10 s: %w", s.socket, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// URL is the go-redis URL the brokers are given.
func (s *redisServer) URL() string { return "unix://" + s.socket }

// client is a one-connection client: the bench's own commands stay few
// and on one connection, so that they can be told from the brokers'.
func (s *redisServer) client() *redis.Client {
	return redis.NewClient(&redis.Options{Network: "unix", Addr: s.socket, PoolSize: 1})
}

func (s *redisServer) stop() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

// redisSnapshot is what INFO says at one moment.
type redisSnapshot struct {
	// Calls is the number of calls per command (INFO commandstats).
	Calls map[string]int64
	// TotalCommands, NetIn and NetOut are total_commands_processed,
	// total_net_input_bytes and total_net_output_bytes (INFO stats).
	TotalCommands, NetIn, NetOut int64
	// UsedMemory is used_memory (INFO memory).
	UsedMemory int64
	// CPU is used_cpu_user + used_cpu_sys (INFO cpu): Redis's own count,
	// in microseconds, finer than /proc's ticks and known for a Redis
	// elsewhere too.
	CPU time.Duration
}

// snapshotRedis reads INFO stats, commandstats, memory and cpu in one
// command.
func snapshotRedis(ctx context.Context, c *redis.Client) (redisSnapshot, error) {
	raw, err := c.Info(ctx, "stats", "commandstats", "memory", "cpu").Result()
	if err != nil {
		return redisSnapshot{}, fmt.Errorf("redis INFO: %w", err)
	}
	return parseInfo(raw)
}

// parseInfo reads the fields the report uses from an INFO answer.
func parseInfo(raw string) (redisSnapshot, error) {
	s := redisSnapshot{Calls: map[string]int64{}}
	found := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(raw))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		k, v, ok := strings.Cut(line, ":")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		if name, isCmd := strings.CutPrefix(k, "cmdstat_"); isCmd {
			// calls=12,usec=34,…
			calls, _, _ := strings.Cut(v, ",")
			n, err := strconv.ParseInt(strings.TrimPrefix(calls, "calls="), 10, 64)
			if err != nil {
				return s, fmt.Errorf("redis INFO %s: %w", k, err)
			}
			s.Calls[name] = n
			continue
		}
		if k == "used_cpu_user" || k == "used_cpu_sys" {
			sec, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return s, fmt.Errorf("redis INFO %s: %w", k, err)
			}
			s.CPU += time.Duration(sec * float64(time.Second))
			found[k] = true
			continue
		}
		var dst *int64
		switch k {
		case "total_commands_processed":
			dst = &s.TotalCommands
		case "total_net_input_bytes":
			dst = &s.NetIn
		case "total_net_output_bytes":
			dst = &s.NetOut
		case "used_memory":
			dst = &s.UsedMemory
		default:
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return s, fmt.Errorf("redis INFO %s: %w", k, err)
		}
		*dst = n
		found[k] = true
	}
	for _, k := range []string{"total_commands_processed", "total_net_input_bytes", "total_net_output_bytes", "used_memory", "used_cpu_user", "used_cpu_sys"} {
		if !found[k] {
			return s, fmt.Errorf("redis INFO has no %s", k)
		}
	}
	return s, nil
}

// benchCommands are the commands the bench itself sends between two
// snapshots; they are left out of the per-login counts.
var benchCommands = map[string]bool{"info": true}

// sub returns what happened between before and s, less the cost of taking
// a snapshot (own, measured by two snapshots in a row).
func (s redisSnapshot) sub(before, own redisSnapshot) redisDelta {
	d := redisDelta{Calls: map[string]int64{}, UsedMemory: s.UsedMemory - before.UsedMemory, CPU: s.CPU - before.CPU}
	for name, n := range s.Calls {
		if benchCommands[name] {
			continue
		}
		if n -= before.Calls[name]; n > 0 {
			d.Calls[name] = n
			d.Commands += n
		}
	}
	d.NetIn = max(0, s.NetIn-before.NetIn-(own.NetIn))
	d.NetOut = max(0, s.NetOut-before.NetOut-(own.NetOut))
	return d
}

// redisDelta is the brokers' use of Redis over the measured phase.
type redisDelta struct {
	Calls         map[string]int64
	Commands      int64
	NetIn, NetOut int64
	UsedMemory    int64
	CPU           time.Duration
}

// KeyKind is the keys of one kind left in Redis at the end of a measure.
type KeyKind struct {
	Count int `json:"count"`
	// Bytes is the average MEMORY USAGE of the Sampled first keys seen.
	Bytes   float64 `json:"bytes"`
	Sampled int     `json:"sampled"`
}

// keyKind names a key by what it holds, without its namespace and
// digests: sesame:std:{d}:sess is "sess", sesame:std:{t}at:d is "at",
// sesame:std:upstream:d is "upstream".
func keyKind(key string) string {
	rest := key
	// The namespace, sesame:<platform>: by default.
	for range 2 {
		if _, after, ok := strings.Cut(rest, ":"); ok {
			rest = after
		}
	}
	if strings.HasPrefix(rest, "{") {
		if _, after, ok := strings.Cut(rest, "}"); ok {
			rest = after
		}
	}
	rest = strings.TrimPrefix(rest, ":")
	kind, _, _ := strings.Cut(rest, ":")
	if kind == "" {
		return "other"
	}
	return kind
}

// keySample counts the bench's platforms' keys (sesame:*) by kind, and
// samples the MEMORY USAGE of up to limit keys of each kind.
func keySample(ctx context.Context, c *redis.Client, limit int) (map[string]*KeyKind, error) {
	kinds := map[string]*KeyKind{}
	sums := map[string]int64{}
	iter := c.Scan(ctx, 0, "sesame:*", 1000).Iterator()
	for iter.Next(ctx) {
		name := keyKind(iter.Val())
		k := kinds[name]
		if k == nil {
			k = &KeyKind{}
			kinds[name] = k
		}
		k.Count++
		if k.Sampled < limit {
			n, err := c.MemoryUsage(ctx, iter.Val(), 0).Result()
			if errors.Is(err, redis.Nil) {
				continue // expired meanwhile
			}
			if err != nil {
				return nil, fmt.Errorf("redis MEMORY USAGE %s: %w", iter.Val(), err)
			}
			sums[name] += n
			k.Sampled++
		}
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("redis SCAN: %w", err)
	}
	for name, k := range kinds {
		if k.Sampled > 0 {
			k.Bytes = float64(sums[name]) / float64(k.Sampled)
		}
	}
	return kinds, nil
}
