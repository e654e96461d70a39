/*
 * kafka_sasl_probe: a fake Kafka broker that records the SASL PLAIN
 * credentials clients send it, for the tests of where credentials go.
 *
 * librdkafka's mock cluster (kafka_test_broker) speaks no SASL, so this
 * program speaks just enough of the Kafka protocol for a librdkafka client
 * with security.protocol SASL_PLAINTEXT and sasl.mechanism PLAIN to
 * authenticate: it answers ApiVersions (offering SaslHandshake v0 only, so
 * the client sends the SASL token in a bare frame after the handshake) and
 * SaslHandshake, then reads the PLAIN token ("authzid NUL user NUL
 * password"), prints
 *
 *   auth <mechanism> <user> <password>
 *
 * and closes the connection: the client sees its authentication fail and
 * tries again later.  It prints "bootstrap 127.0.0.1:<port>" first and
 * stops at end of input or on "quit".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNS	32
#define MAX_FRAME	(1024 * 1024)

typedef struct Conn
{
	int			fd;
	int			handshaken;		/* the next frame is the SASL token */
	char		mechanism[64];
	unsigned char *buf;
	size_t		len;
} Conn;

static Conn conns[MAX_CONNS];

static int16_t
get16(const unsigned char *p)
{
	return (int16_t) ((p[0] << 8) | p[1]);
}

static int32_t
get32(const unsigned char *p)
{
	return (int32_t) (((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) |
					  ((uint32_t) p[2] << 8) | p[3]);
}

static void
put16(unsigned char **p, int v)
{
	*(*p)++ = (v >> 8) & 0xff;
	*(*p)++ = v & 0xff;
}

static void
put32(unsigned char **p, int32_t v)
{
	*(*p)++ = (v >> 24) & 0xff;
	*(*p)++ = (v >> 16) & 0xff;
	*(*p)++ = (v >> 8) & 0xff;
	*(*p)++ = v & 0xff;
}

static void
close_conn(Conn *c)
{
	close(c->fd);
	free(c->buf);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

/* send a response: size, then the body that starts with the correlation id */
static void
respond(Conn *c, unsigned char *body, size_t len)
{
	unsigned char hdr[4];
	unsigned char *p = hdr;

	put32(&p, (int32_t) len);
	if (write(c->fd, hdr, 4) != 4 || write(c->fd, body, len) != (ssize_t) len)
		close_conn(c);
}

/* the APIs offered: ApiVersions 0..3 and SaslHandshake 0..0 */
static void
api_versions(Conn *c, int version, int32_t corr)
{
	unsigned char body[64];
	unsigned char *p = body;
	static const int apis[][3] = {{18, 0, 3}, {17, 0, 0}};

	put32(&p, corr);
	put16(&p, 0);				/* error code */
	if (version >= 3)
		*p++ = 2 + 1;			/* compact array: count + 1 */
	else
		put32(&p, 2);
	for (int i = 0; i < 2; i++)
	{
		put16(&p, apis[i][0]);
		put16(&p, apis[i][1]);
		put16(&p, apis[i][2]);
		if (version >= 3)
			*p++ = 0;			/* no tagged fields */
	}
	if (version >= 1)
		put32(&p, 0);			/* throttle time */
	if (version >= 3)
		*p++ = 0;
	respond(c, body, p - body);
}

/* one complete frame of a connection */
static void
handle_frame(Conn *c, unsigned char *f, int32_t len)
{
	int16_t		key;
	int16_t		version;
	int32_t		corr;
	int			off;

	if (c->handshaken)
	{
		/* the bare SASL token; PLAIN: authzid NUL user NUL password */
		const char *user = "";
		const char *password = "";
		char	   *token = malloc(len + 1);

		memcpy(token, f, len);
		token[len] = '\0';
		if (strcmp(c->mechanism, "PLAIN") == 0)
		{
			char	   *nul1 = memchr(token, '\0', len);
			char	   *nul2 = nul1 ? memchr(nul1 + 1, '\0', len - (nul1 + 1 - token)) : NULL;

			if (nul1 && nul2)
			{
				user = nul1 + 1;
				password = nul2 + 1;
			}
		}
		printf("auth %s %s %s\n", c->mechanism, user, password);
		fflush(stdout);
		free(token);
		close_conn(c);
		return;
	}
	if (len < 10)
	{
		close_conn(c);
		return;
	}
	key = get16(f);
	version = get16(f + 2);
	corr = get32(f + 4);
	/* the client id, a nullable string */
	off = 8;
	{
		int16_t		idlen = get16(f + off);

		off += 2 + (idlen > 0 ? idlen : 0);
	}
	if (key == 18)
		api_versions(c, version, corr);
	else if (key == 17 && off + 2 <= len)
	{
		int16_t		mlen = get16(f + off);
		unsigned char body[128];
		unsigned char *p = body;

		if (mlen < 0 || mlen >= (int16_t) sizeof(c->mechanism) || off + 2 + mlen > len)
		{
			close_conn(c);
			return;
		}
		memcpy(c->mechanism, f + off + 2, mlen);
		c->mechanism[mlen] = '\0';
		put32(&p, corr);
		put16(&p, 0);
		put32(&p, 1);
		put16(&p, mlen);
		memcpy(p, c->mechanism, mlen);
		p += mlen;
		c->handshaken = 1;
		respond(c, body, p - body);
	}
	else
		close_conn(c);
}

static void
read_conn(Conn *c)
{
	unsigned char chunk[8192];
	ssize_t		n = read(c->fd, chunk, sizeof(chunk));

	if (n <= 0)
	{
		close_conn(c);
		return;
	}
	c->buf = realloc(c->buf, c->len + n);
	memcpy(c->buf + c->len, chunk, n);
	c->len += n;
	while (c->fd >= 0 && c->len >= 4)
	{
		int32_t		flen = get32(c->buf);

		if (flen < 0 || flen > MAX_FRAME)
		{
			close_conn(c);
			return;
		}
		if (c->len < (size_t) flen + 4)
			return;
		{
			unsigned char *frame = malloc(flen > 0 ? flen : 1);
			size_t		rest = c->len - flen - 4;

			memcpy(frame, c->buf + 4, flen);
			memmove(c->buf, c->buf + 4 + flen, rest);
			c->len = rest;
			handle_frame(c, frame, flen);
			free(frame);
		}
	}
}

int
main(void)
{
	struct sockaddr_in addr;
	socklen_t	alen = sizeof(addr);
	int			lfd = socket(AF_INET, SOCK_STREAM, 0);
	int			one = 1;

	for (int i = 0; i < MAX_CONNS; i++)
		conns[i].fd = -1;
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (lfd < 0 || bind(lfd, (struct sockaddr *) &addr, sizeof(addr)) != 0 ||
		listen(lfd, 16) != 0 || getsockname(lfd, (struct sockaddr *) &addr, &alen) != 0)
	{
		fprintf(stderr, "kafka_sasl_probe: %s\n", strerror(errno));
		return 1;
	}
	printf("bootstrap 127.0.0.1:%d\n", ntohs(addr.sin_port));
	fflush(stdout);

	for (;;)
	{
		struct pollfd pfd[MAX_CONNS + 2];
		int			map[MAX_CONNS + 2];
		int			n = 0;

		pfd[n].fd = 0;
		pfd[n++].events = POLLIN;
		pfd[n].fd = lfd;
		pfd[n++].events = POLLIN;
		for (int i = 0; i < MAX_CONNS; i++)
			if (conns[i].fd >= 0)
			{
				map[n] = i;
				pfd[n].fd = conns[i].fd;
				pfd[n++].events = POLLIN;
			}
		if (poll(pfd, n, -1) < 0)
		{
			if (errno == EINTR)
				continue;
			return 1;
		}
		if (pfd[0].revents)
		{
			char		line[256];

			if (fgets(line, sizeof(line), stdin) == NULL || strncmp(line, "quit", 4) == 0)
				break;
		}
		if (pfd[1].revents & POLLIN)
		{
			int			fd = accept(lfd, NULL, NULL);
			int			slot = -1;

			for (int i = 0; i < MAX_CONNS && slot < 0; i++)
				if (conns[i].fd < 0)
					slot = i;
			if (fd >= 0 && slot < 0)
				close(fd);
			else if (fd >= 0)
				conns[slot].fd = fd;
		}
		for (int k = 2; k < n; k++)
			if (pfd[k].revents && conns[map[k]].fd == pfd[k].fd)
				read_conn(&conns[map[k]]);
	}
	return 0;
}
