package faultnet

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// echoServer answers each line with the same line.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "ping\n" {
		return errors.New("echo mismatch: " + line)
	}
	return nil
}

func TestProxyCutAndHeal(t *testing.T) {
	p, err := NewProxy(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := roundTrip(c); err != nil {
		t.Fatalf("through proxy: %v", err)
	}
	p.Cut()
	if err := roundTrip(c); err == nil {
		t.Fatal("open connection still works after Cut")
	}
	c2, err := net.Dial("tcp", p.Addr())
	if err == nil {
		if err := roundTrip(c2); err == nil {
			t.Fatal("new connection works while cut")
		}
		c2.Close()
	}
	p.Heal()
	c3, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if err := roundTrip(c3); err != nil {
		t.Fatalf("after Heal: %v", err)
	}
}

func TestNetCutBothDirections(t *testing.T) {
	n := NewNet()
	addrA, addrB := echoServer(t), echoServer(t)
	n.Own("a", addrA)
	n.Own("b", addrB)
	ctx := context.Background()
	ab, err := n.Dialer("a")(ctx, addrB)
	if err != nil {
		t.Fatal(err)
	}
	ba, err := n.Dialer("b")(ctx, addrA)
	if err != nil {
		t.Fatal(err)
	}
	n.Cut("a")
	for name, c := range map[string]net.Conn{"a→b": ab, "b→a": ba} {
		if err := roundTrip(c); err == nil {
			t.Errorf("%s still open after cutting a", name)
		}
	}
	if _, err := n.Dialer("b")(ctx, addrA); !errors.Is(err, ErrCut) {
		t.Errorf("dial b→a while a is cut: %v, want ErrCut", err)
	}
	if _, err := n.Dialer("a")(ctx, addrB); !errors.Is(err, ErrCut) {
		t.Errorf("dial a→b while a is cut: %v, want ErrCut", err)
	}
	n.Heal("a")
	c, err := n.Dialer("b")(ctx, addrA)
	if err != nil {
		t.Fatalf("dial after heal: %v", err)
	}
	defer c.Close()
	if err := roundTrip(c); err != nil {
		t.Fatal(err)
	}
}
