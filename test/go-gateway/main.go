// Command go-gateway calls smartflow.notification.Notification the way SmartFlow's gateway does: grpc-go,
// one insecure ClientConn dialled at start (blocking, go-zero's 3 s dial timeout and 20 s keepalive),
// conn.Invoke with messages generated from the original proto, and errors decoded with status.FromError
// and errdetails.ErrorInfo.
//
// Usage: go-gateway -addr host:port [command ...]
//
// Each command is a JSON object; with none on the command line they are read from stdin, one per line, and
// run in order. One JSON line is printed per command:
//
//	{"op":"get|delete|test","user_id":"42","deadline_ms":2000,"cancel_ms":0}
//	{"op":"save","user_id":"42","enabled":true,"webhook_url":"…","auth_type":"bearer","bearer_token":"…"}
//	{"op":"burst","n":500,"calls":[{…},{…}]}   n concurrent calls on the one connection, cycling calls
//	{"op":"load","n":20000,"conns":4,"streams":16,"users":1000}   a closed-loop benchmark (load.go)
//
// user_id is a string so that every int64 survives JSON. "dials" counts the connections dialled so far.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang/protobuf/jsonpb"
	"github.com/golang/protobuf/proto"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "smartflow/notificationpb"
)

const service = "/smartflow.notification.Notification/"

type command struct {
	Op          string    `json:"op"`
	UserID      int64     `json:"user_id,string"`
	Enabled     bool      `json:"enabled"`
	WebhookURL  string    `json:"webhook_url"`
	AuthType    string    `json:"auth_type"`
	BearerToken string    `json:"bearer_token"`
	DeadlineMs  int       `json:"deadline_ms"`
	CancelMs    int       `json:"cancel_ms"`
	N           int       `json:"n"`
	Conns       int       `json:"conns"`
	Streams     int       `json:"streams"`
	Users       int64     `json:"users"`
	Calls       []command `json:"calls"`
}

type errorInfo struct {
	Domain   string            `json:"domain"`
	Reason   string            `json:"reason"`
	Metadata map[string]string `json:"metadata"`
}

type result struct {
	Op        string          `json:"op"`
	Code      string          `json:"code"`
	Message   string          `json:"message"`
	ErrorInfo *errorInfo      `json:"error_info,omitempty"`
	Details   []string        `json:"details,omitempty"`
	Response  json.RawMessage `json:"response,omitempty"`
	Header    metadata.MD     `json:"header,omitempty"`
	Trailer   metadata.MD     `json:"trailer,omitempty"`
	ElapsedMs float64         `json:"elapsed_ms"`
	Dials     int64           `json:"dials"`
	Counts    map[string]int  `json:"counts,omitempty"`
	MaxMs     float64         `json:"max_ms,omitempty"`
	Rps       float64         `json:"rps,omitempty"`
	P50Ms     float64         `json:"p50_ms,omitempty"`
	P99Ms     float64         `json:"p99_ms,omitempty"`
}

type gateway struct {
	addr  string
	conn  *grpc.ClientConn
	dials int64
}

func dial(addr string) (*gateway, error) {
	g := &gateway{addr: addr}
	counting := func(ctx context.Context, target string) (net.Conn, error) {
		atomic.AddInt64(&g.dials, 1)
		return (&net.Dialer{}).DialContext(ctx, "tcp", target)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := grpc.DialContext(ctx, addr,
		grpc.WithInsecure(),
		grpc.WithBlock(),
		grpc.WithContextDialer(counting),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 20 * time.Second}),
	)
	if err != nil {
		return nil, err
	}
	g.conn = conn
	return g, nil
}

func (g *gateway) run(c *command) result {
	switch c.Op {
	case "burst":
		return g.burst(c)
	case "load":
		return g.load(c)
	}
	r := result{Op: c.Op}
	var method string
	var req, resp proto.Message
	switch c.Op {
	case "get":
		method, req, resp = "GetFeishuWebhook", &pb.GetFeishuWebhookRequest{UserId: c.UserID}, &pb.ChannelResponse{}
	case "save":
		method, req, resp = "SaveFeishuWebhook", &pb.SaveFeishuWebhookRequest{
			UserId: c.UserID, Enabled: c.Enabled, WebhookUrl: c.WebhookURL,
			AuthType: c.AuthType, BearerToken: c.BearerToken,
		}, &pb.ChannelResponse{}
	case "delete":
		method, req, resp = "DeleteFeishuWebhook", &pb.DeleteFeishuWebhookRequest{UserId: c.UserID}, &pb.StatusResponse{}
	case "test":
		method, req, resp = "TestFeishuWebhook", &pb.TestFeishuWebhookRequest{UserId: c.UserID}, &pb.TestResult{}
	default:
		r.Code, r.Message = "ClientError", fmt.Sprintf("unknown op %q", c.Op)
		return r
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if c.DeadlineMs > 0 {
		ctx, cancel = context.WithTimeout(ctx, time.Duration(c.DeadlineMs)*time.Millisecond)
		defer cancel()
	}
	if c.CancelMs > 0 {
		timer := time.AfterFunc(time.Duration(c.CancelMs)*time.Millisecond, cancel)
		defer timer.Stop()
	}

	var header, trailer metadata.MD
	start := time.Now()
	err := g.conn.Invoke(ctx, service+method, req, resp, grpc.Header(&header), grpc.Trailer(&trailer))
	r.ElapsedMs = float64(time.Since(start).Microseconds()) / 1000
	r.Header, r.Trailer = header, trailer
	r.Dials = atomic.LoadInt64(&g.dials)

	st, _ := status.FromError(err) // a nil error is a nil *Status: code OK, no message, no details
	r.Code, r.Message = st.Code().String(), st.Message()
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			r.ErrorInfo = &errorInfo{Domain: d.Domain, Reason: d.Reason, Metadata: d.Metadata}
			r.Details = append(r.Details, "google.rpc.ErrorInfo")
		case error:
			r.Details = append(r.Details, "undecodable: "+d.Error())
		default:
			r.Details = append(r.Details, fmt.Sprintf("%T", d))
		}
	}
	if err == nil {
		m := jsonpb.Marshaler{OrigName: true, EmitDefaults: true}
		text, merr := m.MarshalToString(resp)
		if merr != nil {
			r.Code, r.Message = "ClientError", merr.Error()
		} else {
			r.Response = json.RawMessage(text)
		}
	}
	return r
}

func codeOf(err error) string {
	st, _ := status.FromError(err)
	return st.Code().String()
}

// burst runs c.N calls at once on the one connection, call i being c.Calls[i % len(c.Calls)].
func (g *gateway) burst(c *command) result {
	r := result{Op: "burst", Code: "OK", Counts: map[string]int{}}
	if len(c.Calls) == 0 || c.N <= 0 {
		r.Code, r.Message = "ClientError", "burst needs n > 0 and calls"
		return r
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < c.N; i++ {
		wg.Add(1)
		go func(call command) {
			defer wg.Done()
			one := g.run(&call)
			mu.Lock()
			defer mu.Unlock()
			r.Counts[one.Code]++
			if one.ElapsedMs > r.MaxMs {
				r.MaxMs = one.ElapsedMs
			}
		}(c.Calls[i%len(c.Calls)])
	}
	wg.Wait()
	r.ElapsedMs = float64(time.Since(start).Microseconds()) / 1000
	r.Dials = atomic.LoadInt64(&g.dials)
	return r
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9082", "the notification service's host:port")
	flag.Parse()
	g, err := dial(*addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "go-gateway: dial %s: %v\n", *addr, err)
		os.Exit(1)
	}
	defer g.conn.Close()

	out := json.NewEncoder(os.Stdout)
	handle := func(line []byte) {
		var c command
		if err := json.Unmarshal(line, &c); err != nil {
			_ = out.Encode(result{Code: "ClientError", Message: "bad command: " + err.Error()})
			return
		}
		_ = out.Encode(g.run(&c))
	}
	if flag.NArg() > 0 {
		for _, arg := range flag.Args() {
			handle([]byte(arg))
		}
		return
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	for in.Scan() {
		if len(in.Bytes()) > 0 {
			handle(in.Bytes())
		}
	}
}
