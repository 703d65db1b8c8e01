// SPDX-License-Identifier: MIT
/*
 * The network switch of a migration, over rtnetlink: replace the bridge
 * forwarding entry (AF_BRIDGE RTM_NEWNEIGH, "bridge fdb replace ... master
 * dynamic") for the VM's MAC in the destination host's bridge and in the
 * fabric. The sockets are opened inside the two namespaces beforehand (a
 * netlink socket stays in the namespace it was made in), so the switch at
 * STOP is two messages and their acknowledgements: microseconds, where two
 * runs of `bridge` took milliseconds while frames still went to the paused
 * source.
 */
#include <errno.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/proc.h"
#include "vm-int.h"

#define ACK_WAIT_MS 2000

struct nl_port {
	int fd;
	int ifindex;
	char ns[64];
	char dev[IF_NAMESIZE];
};

struct vm_netswitch {
	unsigned char mac[6];
	char mac_text[18];
	struct nl_port host, fabric; /* host.fd < 0: leave the host's bridge alone */
	uint32_t seq;
};

/* Runs inside the port's namespace (tgvm_in_netns): the socket, the port's index. */
static int port_open_here(void *arg)
{
	struct nl_port *p = arg;
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE), r;

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		if (fd >= 0)
			close(fd);
		return r;
	}
	p->ifindex = (int)if_nametoindex(p->dev);
	if (!p->ifindex) {
		r = errno ? -errno : -ENODEV;
		close(fd);
		return r;
	}
	p->fd = fd;
	return 0;
}

static int port_open(struct nl_port *p, const char *ns, const char *dev, struct tgvm_error *reterr)
{
	int r;

	p->fd = -1;
	if (snprintf(p->ns, sizeof(p->ns), "%s", ns) >= (int)sizeof(p->ns) ||
	    snprintf(p->dev, sizeof(p->dev), "%s", dev) >= (int)sizeof(p->dev))
		return tgvm_error_set(reterr, ENAMETOOLONG, "network switch: name too long: '%s'",
		                      strlen(ns) >= sizeof(p->ns) ? ns : dev);
	r = tgvm_in_netns(p->ns, port_open_here, p);
	if (r < 0)
		return tgvm_error_set(reterr, -r, "network switch: no port '%s' in '%s': %s", dev,
		                      ns, strerror(-r));
	return 0;
}

static int parse_mac(const char *s, unsigned char mac[6])
{
	unsigned int v[6];
	char end;

	if (!s || sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
	                 &end) != 6)
		return -1;
	for (int i = 0; i < 6; i++)
		mac[i] = (unsigned char)v[i];
	return 0;
}

int vm_net_switch_prepare(const char *mac, const char *host, const char *tap,
                          struct vm_netswitch **ret, struct tgvm_error *reterr)
{
	struct vm_netswitch *sw = calloc(1, sizeof(*sw));
	char ns[64], uplink[16];
	int r;

	if (!sw)
		return tgvm_error_set(reterr, ENOMEM, "out of memory");
	sw->host.fd = sw->fabric.fd = -1;
	if (parse_mac(mac, sw->mac) < 0) {
		free(sw);
		return tgvm_error_set(reterr, EINVAL, "network switch: '%s' is not a MAC address",
		                      mac ? mac : "");
	}
	snprintf(sw->mac_text, sizeof(sw->mac_text), "%s", mac);
	snprintf(uplink, sizeof(uplink), "fh%08x", vm_fnv1a(host));
	r = port_open(&sw->fabric, tgvm_net_fabric_ns(), uplink, reterr);
	if (r == 0 && tap && *tap) {
		vm_host_netns(host, ns, sizeof(ns));
		r = port_open(&sw->host, ns, tap, reterr);
	}
	if (r < 0) {
		vm_net_switch_free(sw);
		return tgvm_error_prefix(reterr, "cannot prepare pointing the network at host '%s'",
		                         host);
	}
	*ret = sw;
	return 0;
}

/* Send "fdb replace MAC dev PORT master dynamic" on @p. */
static int fdb_send(struct vm_netswitch *sw, struct nl_port *p)
{
	struct {
		struct nlmsghdr nh;
		struct ndmsg ndm;
		struct rtattr rta;
		unsigned char lladdr[8];
	} req;
	struct sockaddr_nl to = {.nl_family = AF_NETLINK};

	memset(&req, 0, sizeof(req));
	req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(req.ndm)) + RTA_LENGTH(6);
	req.nh.nlmsg_type = RTM_NEWNEIGH;
	req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
	req.nh.nlmsg_seq = ++sw->seq;
	req.ndm.ndm_family = PF_BRIDGE;
	req.ndm.ndm_ifindex = p->ifindex;
	req.ndm.ndm_state = NUD_REACHABLE; /* dynamic: it ages and is learned again */
	req.ndm.ndm_flags = NTF_MASTER;
	req.rta.rta_type = NDA_LLADDR;
	req.rta.rta_len = RTA_LENGTH(6);
	memcpy(req.lladdr, sw->mac, 6);
	if (sendto(p->fd, &req, req.nh.nlmsg_len, 0, (struct sockaddr *)&to, sizeof(to)) < 0)
		return -errno;
	return 0;
}

/* The kernel's answer to the last message on @p: 0 or -errno. */
static int fdb_ack(struct nl_port *p)
{
	union {
		struct nlmsghdr nh;
		char buf[1024];
	} u;
	struct pollfd pfd = {.fd = p->fd, .events = POLLIN};

	for (;;) {
		ssize_t n;

		if (poll(&pfd, 1, ACK_WAIT_MS) <= 0)
			return -ETIMEDOUT;
		n = recv(p->fd, u.buf, sizeof(u.buf), MSG_DONTWAIT);
		if (n < 0)
			return errno == EINTR || errno == EAGAIN ? 0 : -errno;
		for (struct nlmsghdr *h = &u.nh; NLMSG_OK(h, (unsigned int)n);
		     h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_ERROR &&
			    h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct nlmsgerr)))
				return ((struct nlmsgerr *)NLMSG_DATA(h))->error;
		}
	}
}

int vm_net_switch_fire(struct vm_netswitch *sw, struct tgvm_error *reterr)
{
	int rh = 0, rf;

	/* The host's bridge first: frames the fabric sends there must find the tap. */
	if (sw->host.fd >= 0)
		rh = fdb_send(sw, &sw->host);
	rf = fdb_send(sw, &sw->fabric);
	if (rh == 0 && sw->host.fd >= 0)
		rh = fdb_ack(&sw->host);
	if (rf == 0)
		rf = fdb_ack(&sw->fabric);
	/* Best effort for the host's bridge: without it the VM's own
	 * announcement fixes it a little later. */
	(void)rh;
	if (rf < 0)
		return tgvm_error_set(reterr, -rf, "cannot point the fabric (port %s) at %s: %s",
		                      sw->fabric.dev, sw->mac_text, strerror(-rf));
	return 0;
}

void vm_net_switch_free(struct vm_netswitch *sw)
{
	if (!sw)
		return;
	if (sw->host.fd >= 0)
		close(sw->host.fd);
	if (sw->fabric.fd >= 0)
		close(sw->fabric.fd);
	free(sw);
}

int vm_net_switch(const char *mac, const char *host, const char *tap, struct tgvm_error *reterr)
{
	struct vm_netswitch *sw = NULL;
	int r = vm_net_switch_prepare(mac, host, tap, &sw, reterr);

	if (r == 0)
		r = vm_net_switch_fire(sw, reterr);
	vm_net_switch_free(sw);
	return r;
}
