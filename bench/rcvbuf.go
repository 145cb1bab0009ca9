package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

// perfdhcp reads every reply through one UDP socket with the kernel's
// default receive buffer (net.core.rmem_default, 208 KiB here: a few
// hundred replies). Whenever its receiving thread is off the CPU for a
// few milliseconds, replies overflow that buffer and perfdhcp counts them
// as the server's drops. The sysctl is machine-wide (read-only inside a
// namespace) and perfdhcp has no option for it, so a tiny LD_PRELOAD
// library enlarges the buffer of each UDP socket perfdhcp opens. Only
// the load generator changes; the servers keep their own settings.
const rcvbufPreloadSource = `#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/socket.h>

/* Built and loaded by Tandem's bench: gives every UDP socket the receive
   buffer named by BENCH_RCVBUF (bytes), ignoring rmem_max (root only). */
int socket(int domain, int type, int protocol) {
	static int (*real_socket)(int, int, int);
	if (!real_socket)
		real_socket = (int (*)(int, int, int))dlsym(RTLD_NEXT, "socket");
	int fd = real_socket(domain, type, protocol);
	if (fd >= 0 && (domain == AF_INET || domain == AF_INET6) && (type & 0xff) == SOCK_DGRAM) {
		const char *s = getenv("BENCH_RCVBUF");
		int n = s ? atoi(s) : 0;
		if (n > 0)
			setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &n, sizeof n);
	}
	return fd;
}
`

// buildRcvbufPreload compiles the library into dir and returns the
// environment that makes perfdhcp use it.
func buildRcvbufPreload(dir string, bytes int) ([]string, error) {
	src := filepath.Join(dir, "rcvbuf.c")
	lib := filepath.Join(dir, "librcvbuf.so")
	if err := os.WriteFile(src, []byte(rcvbufPreloadSource), 0o644); err != nil {
		return nil, err
	}
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	out, err := exec.Command(cc, "-shared", "-fPIC", "-O2", "-o", lib, src, "-ldl").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%s: %v: %s", cc, err, out)
	}
	return []string{"LD_PRELOAD=" + lib, "BENCH_RCVBUF=" + strconv.Itoa(bytes)}, nil
}
