/*
 * notify.h - the systemd readiness protocol (sd_notify), without libsystemd.
 *
 * DESIGN: under a unit of Type=notify, systemd puts the path of a datagram
 * socket in $NOTIFY_SOCKET ("/path", or "@name" for the abstract namespace);
 * the service writes newline-separated assignments to it: READY=1 once it
 * serves, STOPPING=1 when it begins to shut down. Outside systemd the
 * variable is unset and nothing is sent.
 */
#ifndef PARLEY_NOTIFY_H
#define PARLEY_NOTIFY_H

/* Sends state (e.g. "READY=1") to $NOTIFY_SOCKET. 0 when sent or not asked for; -1 on error. */
int notify_send(const char *state);

#endif
