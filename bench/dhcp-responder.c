/*
 * A measuring instrument, not product code: bench/dhcp-responder.ts in C, one thread, recvmmsg and
 * sendmmsg in batches of up to 64. A stateless DHCPv4 responder: DISCOVER -> OFFER, REQUEST -> ACK
 * from pre-encoded templates with xid, flags, giaddr and chaddr copied, htype/hlen echoed, yiaddr
 * from a counter (a REQUEST gets option 50, else ciaddr), options 53, 54 and 51; relayed requests
 * are answered at giaddr:PORT, direct ones by broadcast to PORT+1. bench/server-perfdhcp.bench.ts
 * compiles it into a temporary directory at bench time (gcc -O2); no binary is kept.
 *
 *   dhcp-responder SERVER_ADDRESS [PORT]      (prints "ready" when bound)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 64
#define LEN 300
#define OPT 240

static volatile sig_atomic_t stop;
static void on_term(int s) { (void)s; stop = 1; }

/* Option `code`'s first value byte offset in req, or -1 (options field only). */
static int find_option(const uint8_t *req, int n, int code) {
  for (int p = OPT; p + 1 < n;) {
    if (req[p] == 0) { p++; continue; }
    if (req[p] == 255) return -1;
    if (req[p] == code) return p + 2 + req[p + 1] <= n ? p + 2 : -1;
    p += 2 + req[p + 1];
  }
  return -1;
}

int main(int argc, char **argv) {
  const char *addr = argc > 1 ? argv[1] : "0.0.0.0";
  int port = argc > 2 ? atoi(argv[2]) : 67;
  struct in_addr sid;
  if (inet_pton(AF_INET, addr, &sid) != 1) { fprintf(stderr, "bad address %s\n", addr); return 2; }
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  int one = 1, rcvbuf = 2048 * 1024;
  setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  struct sockaddr_in local = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = INADDR_ANY };
  if (bind(fd, (struct sockaddr *)&local, sizeof local) != 0) { perror("bind"); return 1; }
  /* No SA_RESTART: SIGTERM interrupts the blocking recvmmsg and the loop ends. */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_term;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  uint8_t tmpl[2][LEN];
  for (int t = 0; t < 2; t++) {
    memset(tmpl[t], 0, LEN);
    tmpl[t][0] = 2;
    const uint8_t cookie[4] = { 99, 130, 83, 99 };
    memcpy(tmpl[t] + 236, cookie, 4);
    uint8_t o[] = { 53, 1, t == 0 ? 2 : 5, 54, 4, 0, 0, 0, 0, 51, 4, 0, 0, 0x0e, 0x10, 255 };
    memcpy(o + 5, &sid, 4);
    memcpy(tmpl[t] + OPT, o, sizeof o);
  }

  static uint8_t in[BATCH][1500], out[BATCH][LEN];
  struct iovec iin[BATCH], iout[BATCH];
  struct sockaddr_in from[BATCH], to[BATCH];
  struct mmsghdr rmsg[BATCH], smsg[BATCH];
  memset(rmsg, 0, sizeof rmsg);
  memset(smsg, 0, sizeof smsg);
  for (int i = 0; i < BATCH; i++) {
    iin[i] = (struct iovec){ in[i], sizeof in[i] };
    rmsg[i].msg_hdr = (struct msghdr){ .msg_name = &from[i], .msg_namelen = sizeof from[i], .msg_iov = &iin[i], .msg_iovlen = 1 };
  }
  uint32_t next = 0x0a60000a; /* 10.96.0.10 */
  unsigned long answered = 0;
  printf("ready\n");
  fflush(stdout);
  while (!stop) {
    for (int i = 0; i < BATCH; i++) rmsg[i].msg_hdr.msg_namelen = sizeof from[i];
    /* Blocks for the first datagram, then takes whatever else is already queued. */
    int n = recvmmsg(fd, rmsg, BATCH, MSG_WAITFORONE, NULL);
    if (n <= 0) continue;
    int m = 0;
    for (int i = 0; i < n; i++) {
      const uint8_t *req = in[i];
      int len = (int)rmsg[i].msg_len;
      if (len < OPT + 3 || req[0] != 1 || memcmp(req + 236, "\x63\x82\x53\x63", 4) != 0) continue;
      int t = find_option(req, len, 53);
      if (t < 0 || (req[t] != 1 && req[t] != 3)) continue;
      int discover = req[t] == 1;
      uint8_t *o = out[m];
      memcpy(o, tmpl[discover ? 0 : 1], LEN);
      o[1] = req[1]; o[2] = req[2];
      memcpy(o + 4, req + 4, 4);   /* xid */
      memcpy(o + 10, req + 10, 2); /* flags */
      memcpy(o + 24, req + 24, 20); /* giaddr, chaddr */
      uint32_t yi = 0;
      if (!discover) {
        int r = find_option(req, len, 50);
        if (r >= 0 && req[r - 1] == 4) memcpy(&yi, req + r, 4);
        else memcpy(&yi, req + 12, 4);
      }
      if (yi == 0) yi = htonl(next++);
      memcpy(o + 16, &yi, 4);
      uint32_t gi;
      memcpy(&gi, req + 24, 4);
      to[m] = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons(gi ? port : port + 1), .sin_addr.s_addr = gi ? gi : INADDR_BROADCAST };
      iout[m] = (struct iovec){ o, LEN };
      smsg[m].msg_hdr = (struct msghdr){ .msg_name = &to[m], .msg_namelen = sizeof to[m], .msg_iov = &iout[m], .msg_iovlen = 1 };
      m++;
    }
    for (int s = 0; s < m;) {
      int k = sendmmsg(fd, smsg + s, m - s, 0);
      if (k <= 0) break;
      s += k;
    }
    answered += m;
  }
  fprintf(stderr, "answered %lu\n", answered);
  return 0;
}
