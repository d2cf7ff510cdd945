/* Socket addresses as the kernel reads them: the family, then that family's fields, a Unix
 * path only up to its NUL. glibc's nscd client connects with a sockaddr_un whose path is a
 * short string in a 110-byte struct: no error. With the "bad" argument, the fields the kernel
 * does read are left undefined and each is reported by name. */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int bad = argc > 1 && strcmp(argv[1], "bad") == 0;
    int s = socket(AF_UNIX, SOCK_DGRAM, 0);
    int t = socket(AF_INET, SOCK_DGRAM, 0);

    struct sockaddr_un un;
    un.sun_family = AF_UNIX;
    strcpy(un.sun_path, "/nonexistent/socket");
    struct sockaddr_in in;
    in.sin_family = AF_INET;
    in.sin_port = htons(9);
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bad) {
        un.sun_path[1] = un.sun_path[100]; /* undefined before the NUL */
        struct sockaddr_in fresh;
        fresh.sin_family = AF_INET;
        fresh.sin_port = htons(9);
        memcpy(&in, &fresh, sizeof in); /* sin_addr undefined */
    }
    connect(s, (struct sockaddr *)&un, sizeof un);  /* CONNECT_UN */
    bind(s, (struct sockaddr *)&un, sizeof un);     /* BIND_UN */
    sendto(s, "x", 1, MSG_DONTWAIT, (struct sockaddr *)&un, sizeof un); /* SENDTO_UN */
    /* sin_zero (8 bytes of padding) stays undefined: not read. */
    connect(t, (struct sockaddr *)&in, sizeof in);  /* CONNECT_IN */
    /* AF_UNSPEC: nothing but the family. */
    struct sockaddr unspec;
    unspec.sa_family = AF_UNSPEC;
    connect(t, &unspec, sizeof unspec);
    close(s);
    close(t);
    return 0;
}
