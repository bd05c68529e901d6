/* SPDX-License-Identifier: ISC */
/*
 * python.c - the plugin "python": serves an unchanged socketserver request
 * handler class, Class(request, client_address, server) per request, with
 * a request object that behaves as the connected socket but does its I/O
 * through ssd_read/ssd_write (so TLS, the listener's timeout and the stop
 * hold), the GIL released around every wait.  The only code of sockserverd
 * that links libpython; it must never assume a concurrency model beyond
 * refusing "event" (a coroutine cannot hold the GIL across a yield).
 *
 * One interpreter per process, initialised by the first init and never
 * finalised: a reload imports the module afresh into new module objects,
 * and requests in progress keep the class objects they started with (a
 * generation's instance holds its class until fini).  Forks (the fork
 * model, the daemon's probes, exec) go through pthread_atfork handlers
 * that take the GIL and run PyOS_BeforeFork/AfterFork_*, as os.fork does.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <sockserverd.h>

/* One listener's handler in one generation. */
struct pyinst {
	PyObject	*pi_cls;	/* the handler class */
	PyObject	*pi_server;	/* what handlers see as self.server */
	PyObject	*pi_timeout;	/* the listener's timeout, or None */
	char		*pi_qualname;	/* "module.Class", for the logs */
	size_t		 pi_maxpacket;
	int		 pi_port0;	/* port = 0: fill server_address in */
};

/* The request object (stream), or the socket of a datagram's request. */
struct pyreq {
	PyObject_HEAD
	struct ssd_request	*r_rq;		/* NULL once the request ended */
	PyObject		*r_peer;	/* client_address */
	PyObject		*r_timeout;	/* what settimeout stored */
	int			 r_io_refs;	/* socket.makefile's count */
	int			 r_busy;	/* threads inside ssd_* */
	bool			 r_closed;	/* close() called */
	bool			 r_dgram;
	bool			 r_tls;
};

/* Interpreter-wide objects of this copy of the plugin. */
static PyTypeObject	*py_reqtype;
static PyObject		*py_boot;	/* the bootstrap module's dict */
static PyObject		*py_makefile;	/* socket.socket.makefile */
static pthread_mutex_t	 py_init_mtx = PTHREAD_MUTEX_INITIALIZER;
static __thread PyGILState_STATE py_fork_gil;
static __thread bool	 py_fork_took;

/*
 * Python side of the plugin: the server object, importing afresh, and
 * the messages for import errors and tracebacks.
 */
static const char py_bootstrap[] =
"import importlib, os, socket, socketserver, sys, traceback\n"
"\n"
"class Server:\n"
"    \"\"\"What a handler sees as self.server.\"\"\"\n"
"    def __init__(self, **kw):\n"
"        self.__dict__.update(kw)\n"
"        self.socket_type = socket.SocketKind(self.socket_type)\n"
"        self.address_family = socket.AddressFamily(self.address_family)\n"
"    def __repr__(self):\n"
"        return '<sockserverd server %r %r>' % (self.listener,\n"
"                                             self.server_address)\n"
"\n"
"def _under(f, dirs):\n"
"    if not f:\n"
"        return False\n"
"    f = os.path.abspath(f)\n"
"    return any(f.startswith(d + os.sep) for d in dirs)\n"
"\n"
"def load(module, paths):\n"
"    \"\"\"Imports module afresh (and whatever else came from paths): new\n"
"    module objects; the old ones live on in what still uses them.  On\n"
"    failure sys.modules is as it was.\"\"\"\n"
"    dirs = [os.path.abspath(p) for p in paths]\n"
"    for p in reversed(paths):\n"
"        if p not in sys.path:\n"
"            sys.path.insert(0, p)\n"
"    old = {}\n"
"    for name, m in list(sys.modules.items()):\n"
"        if (name == module or name.startswith(module + '.') or\n"
"                _under(getattr(m, '__file__', None), dirs)):\n"
"            old[name] = sys.modules.pop(name)\n"
"    importlib.invalidate_caches()\n"
"    try:\n"
"        return importlib.import_module(module)\n"
"    except BaseException:\n"
"        for name in list(sys.modules):\n"
"            if name in old or name == module or \\\n"
"                    name.startswith(module + '.'):\n"
"                sys.modules.pop(name, None)\n"
"        sys.modules.update(old)\n"
"        raise\n"
"\n"
"def check_class(module, name):\n"
"    \"\"\"The class, or a str saying what is wrong.\"\"\"\n"
"    cls = getattr(module, name, None)\n"
"    if cls is None:\n"
"        return 'module %r has no class %r' % (module.__name__, name)\n"
"    if not isinstance(cls, type) or \\\n"
"            not issubclass(cls, socketserver.BaseRequestHandler):\n"
"        return '%s.%s is not a socketserver.BaseRequestHandler ' \\\n"
"            'subclass' % (module.__name__, name)\n"
"    return cls\n"
"\n"
"def describe(e):\n"
"    \"\"\"One line: the exception, and where it was raised.\"\"\"\n"
"    if isinstance(e, SyntaxError):\n"
"        return '%s: %s' % (type(e).__name__, e)\n"
"    msg = traceback.format_exception_only(type(e), e)[-1].strip()\n"
"    tb = [f for f in traceback.extract_tb(e.__traceback__)\n"
"          if not f.filename.startswith('<frozen')]\n"
"    if tb:\n"
"        msg += ' (%s, line %s)' % (tb[-1].filename, tb[-1].lineno)\n"
"    return msg\n"
"\n"
"def lines(e):\n"
"    \"\"\"The traceback, line by line, as handle_error prints it.\"\"\"\n"
"    out = []\n"
"    for chunk in traceback.format_exception(type(e), e, e.__traceback__):\n"
"        out.extend(chunk.rstrip('\\n').split('\\n'))\n"
"    return out\n"
"\n"
"QUIET = (TimeoutError, ConnectionError)\n";

/* ------------------------------------------------------------------ */
/* The request object. */

static void
py_req_dealloc(PyObject *o)
{
	struct pyreq	*self = (struct pyreq *)o;
	PyTypeObject	*tp = Py_TYPE(o);

	Py_XDECREF(self->r_peer);
	Py_XDECREF(self->r_timeout);
	tp->tp_free(o);
	Py_DECREF(tp);
}

/* The request, or NULL with OSError(EBADF) set. */
static struct ssd_request *
py_req_get(struct pyreq *self)
{
	if (self->r_rq == NULL || (self->r_closed && self->r_io_refs <= 0)) {
		errno = EBADF;
		PyErr_SetFromErrno(PyExc_OSError);
		return NULL;
	}
	return self->r_rq;
}

static PyObject *
py_req_error(int err)
{
	if (err == ETIMEDOUT)
		PyErr_SetString(PyExc_TimeoutError, "timed out");
	else {
		errno = err != 0 ? err : EIO;
		PyErr_SetFromErrno(PyExc_OSError);
	}
	return NULL;
}

static int
py_req_flags(int flags)
{
	if (flags != 0) {
		PyErr_SetString(PyExc_ValueError, "sockserverd: flags are not "
		    "supported on a request");
		return -1;
	}
	return 0;
}

/* ssd_read without the GIL: bytes read, 0 at EOF, -1 with an error set. */
static Py_ssize_t
py_req_read(struct pyreq *self, char *buf, Py_ssize_t len)
{
	struct ssd_request	*rq;
	ssize_t			 n;
	int			 err = 0;

	if ((rq = py_req_get(self)) == NULL)
		return -1;
	if (len == 0)
		return 0;
	/* Bytes already there are read with the GIL held, as a small
	 * write is (py_req_write). */
	if (!self->r_dgram && !self->r_tls) {
		struct pollfd pfd = { .fd = ssd_fd(rq), .events = POLLIN };

		if (poll(&pfd, 1, 0) == 1 && pfd.revents == POLLIN) {
			if ((n = ssd_read(rq, buf, (size_t)len)) < 0)
				py_req_error(errno);
			return n;
		}
	}
	self->r_busy++;
	Py_BEGIN_ALLOW_THREADS
	n = ssd_read(rq, buf, (size_t)len);
	if (n < 0)
		err = errno;
	Py_END_ALLOW_THREADS
	self->r_busy--;
	if (n < 0) {
		py_req_error(err);
		return -1;
	}
	return n;
}

/*
 * ssd_write without the GIL.  A small write to a plain TCP socket with
 * room in its buffer cannot wait, and keeps the GIL: dropping and taking
 * it back costs more than the send itself when threads compete for it.
 */
static int
py_req_write(struct pyreq *self, const void *buf, Py_ssize_t len)
{
	struct ssd_request	*rq;
	struct pollfd		 pfd;
	int			 rc, err = 0;

	if ((rq = py_req_get(self)) == NULL)
		return -1;
	if (!self->r_dgram && !self->r_tls && len <= 2048) {
		pfd.fd = ssd_fd(rq);
		pfd.events = POLLOUT;
		if (poll(&pfd, 1, 0) == 1 && pfd.revents == POLLOUT) {
			if ((rc = ssd_write(rq, buf, (size_t)len)) == -1) {
				py_req_error(errno);
				return -1;
			}
			return 0;
		}
	}
	self->r_busy++;
	Py_BEGIN_ALLOW_THREADS
	rc = ssd_write(rq, buf, (size_t)len);
	if (rc == -1)
		err = errno;
	Py_END_ALLOW_THREADS
	self->r_busy--;
	if (rc == -1) {
		py_req_error(err);
		return -1;
	}
	return 0;
}

/*
 * A small recv reads into the stack and makes bytes of the length read:
 * bytes of the size asked for (recv(1024) is over pymalloc's 512) come
 * from malloc and are shrunk after, and a fork child's first such malloc
 * consolidates the free chunks the daemon left, a copy-on-write fault on
 * every page of the heap they sit in.
 */
#define PY_RECV_STACK	8192

static PyObject *
py_req_recv(struct pyreq *self, PyObject *args)
{
	char		 small[PY_RECV_STACK];
	Py_ssize_t	 size, n;
	PyObject	*b;
	int		 flags = 0;

	if (!PyArg_ParseTuple(args, "n|i:recv", &size, &flags) ||
	    py_req_flags(flags) == -1)
		return NULL;
	if (size < 0) {
		PyErr_SetString(PyExc_ValueError,
		    "negative buffersize in recv");
		return NULL;
	}
	if (size <= PY_RECV_STACK) {
		if ((n = py_req_read(self, small, size)) < 0)
			return NULL;
		return PyBytes_FromStringAndSize(small, n);
	}
	if ((b = PyBytes_FromStringAndSize(NULL, size)) == NULL)
		return NULL;
	if ((n = py_req_read(self, PyBytes_AS_STRING(b), size)) < 0) {
		Py_DECREF(b);
		return NULL;
	}
	if (n != size)
		_PyBytes_Resize(&b, n);
	return b;
}

static PyObject *
py_req_recv_into(struct pyreq *self, PyObject *args, PyObject *kw)
{
	static char	*kwlist[] = { "buffer", "nbytes", "flags", NULL };
	Py_buffer	 pb;
	Py_ssize_t	 nbytes = 0, n;
	int		 flags = 0;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "w*|ni:recv_into", kwlist,
	    &pb, &nbytes, &flags))
		return NULL;
	if (py_req_flags(flags) == -1 || nbytes < 0) {
		if (nbytes < 0)
			PyErr_SetString(PyExc_ValueError,
			    "negative buffersize in recv_into");
		PyBuffer_Release(&pb);
		return NULL;
	}
	if (nbytes == 0 || nbytes > pb.len)
		nbytes = pb.len;
	n = py_req_read(self, pb.buf, nbytes);
	PyBuffer_Release(&pb);
	return n < 0 ? NULL : PyLong_FromSsize_t(n);
}

static PyObject *
py_req_sendall(struct pyreq *self, PyObject *args)
{
	Py_buffer	 pb;
	int		 flags = 0, rc;

	if (!PyArg_ParseTuple(args, "y*|i:sendall", &pb, &flags))
		return NULL;
	rc = py_req_flags(flags) == -1 ? -1 :
	    py_req_write(self, pb.buf, pb.len);
	PyBuffer_Release(&pb);
	if (rc == -1)
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *
py_req_send(struct pyreq *self, PyObject *args)
{
	Py_buffer	 pb;
	Py_ssize_t	 len;
	int		 flags = 0, rc;

	if (!PyArg_ParseTuple(args, "y*|i:send", &pb, &flags))
		return NULL;
	len = pb.len;
	rc = py_req_flags(flags) == -1 ? -1 :
	    py_req_write(self, pb.buf, pb.len);
	PyBuffer_Release(&pb);
	return rc == -1 ? NULL : PyLong_FromSsize_t(len);
}

/* sendto(data[, flags], address): a datagram's reply goes to its client
 * (DatagramRequestHandler); the address must be that client's. */
static PyObject *
py_req_sendto(struct pyreq *self, PyObject *args)
{
	Py_buffer	 pb;
	PyObject	*addr;
	Py_ssize_t	 len;
	int		 flags = 0, rc, same;

	if (PyTuple_GET_SIZE(args) == 3) {
		if (!PyArg_ParseTuple(args, "y*iO:sendto", &pb, &flags, &addr))
			return NULL;
	} else if (!PyArg_ParseTuple(args, "y*O:sendto", &pb, &addr))
		return NULL;
	len = pb.len;
	if ((same = PyObject_RichCompareBool(addr, self->r_peer, Py_EQ)) != 1) {
		if (same == 0)
			PyErr_Format(PyExc_OSError, "sockserverd: a reply goes "
			    "to the request's client %R, not %R",
			    self->r_peer, addr);
		rc = -1;
	} else
		rc = py_req_flags(flags) == -1 ? -1 :
		    py_req_write(self, pb.buf, pb.len);
	PyBuffer_Release(&pb);
	return rc == -1 ? NULL : PyLong_FromSsize_t(len);
}

/* A socket address as Python's socket module gives it. */
static PyObject *
py_sockaddr(const struct sockaddr *sa, socklen_t len)
{
	char buf[INET6_ADDRSTRLEN];

	if (sa == NULL || len < (socklen_t)sizeof(sa_family_t))
		return PyUnicode_FromString("");
	switch (sa->sa_family) {
	case AF_INET: {
		const struct sockaddr_in *sin = (const void *)sa;

		inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf));
		return Py_BuildValue("(si)", buf, ntohs(sin->sin_port));
	}
	case AF_INET6: {
		const struct sockaddr_in6 *sin6 = (const void *)sa;

		inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf));
		return Py_BuildValue("(siII)", buf, ntohs(sin6->sin6_port),
		    (unsigned)ntohl(sin6->sin6_flowinfo),
		    (unsigned)sin6->sin6_scope_id);
	}
	case AF_UNIX: {
		const struct sockaddr_un *sun = (const void *)sa;
		size_t n = len - offsetof(struct sockaddr_un, sun_path);

		if (len <= offsetof(struct sockaddr_un, sun_path))
			return PyUnicode_FromString("");
		if (sun->sun_path[0] == '\0')	/* abstract: bytes */
			return PyBytes_FromStringAndSize(sun->sun_path, n);
		return PyUnicode_DecodeFSDefault(sun->sun_path);
	}
	default:
		return PyUnicode_FromString("");
	}
}

static PyObject *
py_req_getpeername(struct pyreq *self, PyObject *unused)
{
	(void)unused;
	if (py_req_get(self) == NULL)
		return NULL;
	Py_INCREF(self->r_peer);
	return self->r_peer;
}

static PyObject *
py_req_getsockname(struct pyreq *self, PyObject *unused)
{
	struct ssd_request	*rq;
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);

	(void)unused;
	if ((rq = py_req_get(self)) == NULL)
		return NULL;
	if (getsockname(ssd_fd(rq), (struct sockaddr *)&ss, &len) == -1)
		return py_req_error(errno);
	return py_sockaddr((struct sockaddr *)&ss, len);
}

static PyObject *
py_req_fileno(struct pyreq *self, PyObject *unused)
{
	(void)unused;
	if (self->r_rq == NULL || (self->r_closed && self->r_io_refs <= 0))
		return PyLong_FromLong(-1);	/* as a closed socket */
	return PyLong_FromLong(ssd_fd(self->r_rq));
}

static PyObject *
py_req_settimeout(struct pyreq *self, PyObject *value)
{
	double t;

	if (value != Py_None) {
		if ((t = PyFloat_AsDouble(value)) == -1 && PyErr_Occurred())
			return NULL;
		if (t < 0) {
			PyErr_SetString(PyExc_ValueError,
			    "Timeout value out of range");
			return NULL;
		}
		value = PyFloat_FromDouble(t);
	} else
		Py_INCREF(value);
	Py_SETREF(self->r_timeout, value);
	Py_RETURN_NONE;
}

static PyObject *
py_req_gettimeout(struct pyreq *self, PyObject *unused)
{
	(void)unused;
	Py_INCREF(self->r_timeout);
	return self->r_timeout;
}

static PyObject *
py_req_setblocking(struct pyreq *self, PyObject *flag)
{
	int b;

	(void)self;
	if ((b = PyObject_IsTrue(flag)) == -1)
		return NULL;
	if (!b) {
		PyErr_SetString(PyExc_OSError, "sockserverd: a request "
		    "cannot be made non-blocking");
		return NULL;
	}
	Py_RETURN_NONE;
}

static PyObject *
py_req_getblocking(struct pyreq *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	Py_RETURN_TRUE;
}

static PyObject *
py_req_shutdown(struct pyreq *self, PyObject *arg)
{
	struct ssd_request	*rq;
	long			 how;

	if ((how = PyLong_AsLong(arg)) == -1 && PyErr_Occurred())
		return NULL;
	if ((rq = py_req_get(self)) == NULL)
		return NULL;
	if (self->r_dgram)
		return py_req_error(ENOTCONN);
	if (shutdown(ssd_fd(rq), (int)how) == -1)
		return py_req_error(errno);
	Py_RETURN_NONE;
}

static PyObject *
py_req_close(struct pyreq *self, PyObject *unused)
{
	(void)unused;
	/* The daemon closes the connection when the request ends. */
	self->r_closed = true;
	Py_RETURN_NONE;
}

/* socket.socket's, for the SocketIO objects of makefile. */
static PyObject *
py_req_decref_socketios(struct pyreq *self, PyObject *unused)
{
	(void)unused;
	if (self->r_io_refs > 0)
		self->r_io_refs--;
	Py_RETURN_NONE;
}

static PyObject *
py_req_makefile(PyObject *self, PyObject *args, PyObject *kw)
{
	PyObject *all, *r;

	if ((all = PyTuple_New(PyTuple_GET_SIZE(args) + 1)) == NULL)
		return NULL;
	Py_INCREF(self);
	PyTuple_SET_ITEM(all, 0, self);
	for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(args); i++) {
		PyObject *a = PyTuple_GET_ITEM(args, i);

		Py_INCREF(a);
		PyTuple_SET_ITEM(all, i + 1, a);
	}
	r = PyObject_Call(py_makefile, all, kw);
	Py_DECREF(all);
	return r;
}

static PyObject *
py_req_setsockopt(struct pyreq *self, PyObject *args)
{
	struct ssd_request	*rq;
	Py_buffer		 pb;
	int			 level, opt, v, rc;

	if ((rq = py_req_get(self)) == NULL)
		return NULL;
	if (PyArg_ParseTuple(args, "iii:setsockopt", &level, &opt, &v))
		rc = setsockopt(ssd_fd(rq), level, opt, &v, sizeof(v));
	else {
		PyErr_Clear();
		if (!PyArg_ParseTuple(args, "iiy*:setsockopt", &level, &opt,
		    &pb))
			return NULL;
		rc = setsockopt(ssd_fd(rq), level, opt, pb.buf,
		    (socklen_t)pb.len);
		PyBuffer_Release(&pb);
	}
	if (rc == -1)
		return py_req_error(errno);
	Py_RETURN_NONE;
}

static PyObject *
py_req_getsockopt(struct pyreq *self, PyObject *args)
{
	struct ssd_request	*rq;
	char			 buf[1024];
	socklen_t		 len;
	int			 level, opt, buflen = 0, v;

	if ((rq = py_req_get(self)) == NULL ||
	    !PyArg_ParseTuple(args, "ii|i:getsockopt", &level, &opt, &buflen))
		return NULL;
	if (buflen == 0) {
		len = sizeof(v);
		if (getsockopt(ssd_fd(rq), level, opt, &v, &len) == -1)
			return py_req_error(errno);
		return PyLong_FromLong(v);
	}
	if (buflen < 0 || (size_t)buflen > sizeof(buf)) {
		PyErr_SetString(PyExc_OSError, "getsockopt buflen out of "
		    "range");
		return NULL;
	}
	len = (socklen_t)buflen;
	if (getsockopt(ssd_fd(rq), level, opt, buf, &len) == -1)
		return py_req_error(errno);
	return PyBytes_FromStringAndSize(buf, len);
}

static PyObject *
py_req_enter(PyObject *self, PyObject *unused)
{
	(void)unused;
	Py_INCREF(self);
	return self;
}

static PyObject *
py_req_exit(struct pyreq *self, PyObject *args)
{
	(void)args;
	self->r_closed = true;
	Py_RETURN_NONE;
}

static PyObject *
py_req_repr(struct pyreq *self)
{
	return PyUnicode_FromFormat("<sockserverd.socket %s peer=%R%s>",
	    self->r_dgram ? "dgram" : "stream", self->r_peer,
	    self->r_rq == NULL ? " [ended]" : "");
}

static PyObject *
py_req_get_family(struct pyreq *self, void *closure)
{
	struct sockaddr_storage	ss;
	socklen_t		len = sizeof(ss);

	(void)closure;
	if (self->r_rq == NULL || getsockname(ssd_fd(self->r_rq),
	    (struct sockaddr *)&ss, &len) == -1)
		return PyLong_FromLong(-1);
	return PyLong_FromLong(ss.ss_family);
}

static PyObject *
py_req_get_type(struct pyreq *self, void *closure)
{
	(void)closure;
	return PyLong_FromLong(self->r_dgram ? SOCK_DGRAM : SOCK_STREAM);
}

static PyObject *
py_req_get_proto(struct pyreq *self, void *closure)
{
	(void)self;
	(void)closure;
	return PyLong_FromLong(0);
}

static PyObject *
py_req_get_closed(struct pyreq *self, void *closure)
{
	(void)closure;
	return PyBool_FromLong(self->r_closed || self->r_rq == NULL);
}

static PyObject *
py_req_get_io_refs(struct pyreq *self, void *closure)
{
	(void)closure;
	return PyLong_FromLong(self->r_io_refs);
}

static int
py_req_set_io_refs(struct pyreq *self, PyObject *v, void *closure)
{
	long n;

	(void)closure;
	if (v == NULL || ((n = PyLong_AsLong(v)) == -1 && PyErr_Occurred()))
		return -1;
	self->r_io_refs = (int)n;
	return 0;
}

#define PY_METH(name, fn, how) \
	{ name, (PyCFunction)(void (*)(void))(fn), how, NULL }
static PyMethodDef py_req_methods[] = {
	PY_METH("recv", py_req_recv, METH_VARARGS),
	PY_METH("recv_into", py_req_recv_into, METH_VARARGS | METH_KEYWORDS),
	PY_METH("send", py_req_send, METH_VARARGS),
	PY_METH("sendall", py_req_sendall, METH_VARARGS),
	PY_METH("sendto", py_req_sendto, METH_VARARGS),
	PY_METH("makefile", py_req_makefile, METH_VARARGS | METH_KEYWORDS),
	PY_METH("settimeout", py_req_settimeout, METH_O),
	PY_METH("gettimeout", py_req_gettimeout, METH_NOARGS),
	PY_METH("setblocking", py_req_setblocking, METH_O),
	PY_METH("getblocking", py_req_getblocking, METH_NOARGS),
	PY_METH("getpeername", py_req_getpeername, METH_NOARGS),
	PY_METH("getsockname", py_req_getsockname, METH_NOARGS),
	PY_METH("fileno", py_req_fileno, METH_NOARGS),
	PY_METH("shutdown", py_req_shutdown, METH_O),
	PY_METH("close", py_req_close, METH_NOARGS),
	PY_METH("setsockopt", py_req_setsockopt, METH_VARARGS),
	PY_METH("getsockopt", py_req_getsockopt, METH_VARARGS),
	PY_METH("_decref_socketios", py_req_decref_socketios, METH_NOARGS),
	PY_METH("__enter__", py_req_enter, METH_NOARGS),
	PY_METH("__exit__", py_req_exit, METH_VARARGS),
	{ NULL, NULL, 0, NULL }
};

static PyGetSetDef py_req_getset[] = {
	{ "family", (getter)py_req_get_family, NULL, NULL, NULL },
	{ "type", (getter)py_req_get_type, NULL, NULL, NULL },
	{ "proto", (getter)py_req_get_proto, NULL, NULL, NULL },
	{ "_closed", (getter)py_req_get_closed, NULL, NULL, NULL },
	{ "_io_refs", (getter)py_req_get_io_refs, (setter)py_req_set_io_refs,
	    NULL, NULL },
	{ NULL, NULL, NULL, NULL, NULL }
};

static PyType_Slot py_req_slots[] = {
	{ Py_tp_dealloc, (void *)py_req_dealloc },
	{ Py_tp_repr, (void *)py_req_repr },
	{ Py_tp_methods, py_req_methods },
	{ Py_tp_getset, py_req_getset },
	{ Py_tp_doc, (void *)"a sockserverd request: behaves as the "
	    "connected socket; I/O goes through the daemon" },
	{ 0, NULL }
};

static PyType_Spec py_req_spec = {
	.name = "sockserverd.socket",
	.basicsize = sizeof(struct pyreq),
	.flags = Py_TPFLAGS_DEFAULT,
	.slots = py_req_slots,
};

/* ------------------------------------------------------------------ */
/* The interpreter. */

static void
py_atfork_prepare(void)
{
	/* Python's own forks (os.fork, subprocess) hold the GIL and do
	 * this themselves; the daemon's take it here. */
	py_fork_took = false;
	if (!Py_IsInitialized() || PyGILState_Check())
		return;
	py_fork_gil = PyGILState_Ensure();
	PyOS_BeforeFork();
	py_fork_took = true;
}

static void
py_atfork_parent(void)
{
	if (!py_fork_took)
		return;
	PyOS_AfterFork_Parent();
	PyGILState_Release(py_fork_gil);
}

/*
 * The child keeps this thread's state: PyOS_AfterFork_Child deleted all
 * others, the interpreter's first among them, and 3.11 would hand that
 * one out again, still marked initialised, to the next new thread state
 * (a fatal error).  The child has no other thread to give it to.
 */
static void
py_atfork_child(void)
{
	if (!py_fork_took)
		return;
	PyOS_AfterFork_Child();
	(void)py_fork_gil;
	PyEval_SaveThread();
}

/* Never unloaded: Python keeps pointers into this object and libpython,
 * and the fork handlers live here. */
static void
py_pin(void)
{
	Dl_info info;

	/* Extension modules (_socket, _ssl...) resolve libpython's
	 * symbols globally; the daemon opened us RTLD_LOCAL. */
	if (dladdr((void *)Py_InitializeFromConfig, &info) != 0 &&
	    info.dli_fname != NULL)
		dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_GLOBAL |
		    RTLD_NODELETE);
	if (dladdr((void *)py_pin, &info) != 0 && info.dli_fname != NULL)
		dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

/* Starts the interpreter once per process, and this copy's objects once
 * per copy of the plugin.  Returns holding the GIL, or NULL with msg. */
static int
py_start(PyGILState_STATE *gs, const char **msg)
{
	PyConfig	 pc;
	PyStatus	 st;
	PyObject	*code = NULL, *mod = NULL, *sock = NULL, *cls = NULL;
	PyObject	*res = NULL;
	int		 rc = -1;

	pthread_mutex_lock(&py_init_mtx);
	if (!Py_IsInitialized()) {
		py_pin();
		/* Under AddressSanitizer, Python's objects come from malloc:
		 * pymalloc's mmap'd arenas hide them from ASan's checks, and
		 * LeakSanitizer, which does not scan those arenas, would call
		 * every object referenced only from one leaked. */
		if (dlsym(RTLD_DEFAULT, "__asan_init") != NULL) {
			PyPreConfig pre;

			PyPreConfig_InitPythonConfig(&pre);
			pre.allocator = PYMEM_ALLOCATOR_MALLOC;
			st = Py_PreInitialize(&pre);
			if (PyStatus_Exception(st)) {
				pthread_mutex_unlock(&py_init_mtx);
				*msg = "cannot initialise Python";
				return -1;
			}
		}
		PyConfig_InitPythonConfig(&pc);
		pc.install_signal_handlers = 0;	/* the daemon's signals */
		pc.parse_argv = 0;
		pc.buffered_stdio = 0;	/* print() seen at once, forks too */
		st = Py_InitializeFromConfig(&pc);
		PyConfig_Clear(&pc);
		if (PyStatus_Exception(st)) {
			pthread_mutex_unlock(&py_init_mtx);
			*msg = st.err_msg != NULL ? st.err_msg :
			    "cannot initialise Python";
			return -1;
		}
		pthread_atfork(py_atfork_prepare, py_atfork_parent,
		    py_atfork_child);
		PyEval_SaveThread();
	}
	*gs = PyGILState_Ensure();
	if (py_boot != NULL) {
		pthread_mutex_unlock(&py_init_mtx);
		return 0;
	}
	*msg = "cannot start the plugin's Python code";
	if ((mod = PyModule_New("_sockserverd")) == NULL ||
	    PyModule_AddStringConstant(mod, "__file__", __FILE__) == -1 ||
	    (code = Py_CompileString(py_bootstrap, "<sockserverd>",
	    Py_file_input)) == NULL)
		goto fail;
	Py_INCREF(PyModule_GetDict(mod));
	py_boot = PyModule_GetDict(mod);
	if ((res = PyEval_EvalCode(code, py_boot, py_boot)) == NULL ||
	    (sock = PyImport_ImportModule("socket")) == NULL ||
	    (cls = PyObject_GetAttrString(sock, "socket")) == NULL ||
	    (py_makefile = PyObject_GetAttrString(cls, "makefile")) == NULL ||
	    (py_reqtype = (PyTypeObject *)PyType_FromSpec(&py_req_spec)) ==
	    NULL)
		goto fail;
	rc = 0;
fail:
	if (rc == -1) {
		PyErr_Print();
		Py_CLEAR(py_boot);
		Py_CLEAR(py_makefile);
		PyGILState_Release(*gs);
	}
	Py_XDECREF(res);
	Py_XDECREF(cls);
	Py_XDECREF(sock);
	Py_XDECREF(code);
	Py_XDECREF(mod);
	pthread_mutex_unlock(&py_init_mtx);
	return rc;
}

/* ------------------------------------------------------------------ */
/* init and fini. */

static const config_setting_t *
py_member(const config_setting_t *g, const char *name)
{
	return g != NULL ? config_setting_get_member(g, name) : NULL;
}

/* A libconfig value as a Python object (new reference). */
static PyObject *
py_value(const config_setting_t *s)
{
	PyObject	*o, *v;
	int		 n = config_setting_length(s);

	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		return PyLong_FromLongLong(config_setting_get_int64(s));
	case CONFIG_TYPE_FLOAT:
		return PyFloat_FromDouble(config_setting_get_float(s));
	case CONFIG_TYPE_BOOL:
		return PyBool_FromLong(config_setting_get_bool(s));
	case CONFIG_TYPE_STRING:
		return PyUnicode_FromString(config_setting_get_string(s));
	case CONFIG_TYPE_GROUP:
		if ((o = PyDict_New()) == NULL)
			return NULL;
		for (int i = 0; i < n; i++) {
			const config_setting_t *e = config_setting_get_elem(s,
			    (unsigned)i);

			if ((v = py_value(e)) == NULL ||
			    PyDict_SetItemString(o, config_setting_name(e),
			    v) == -1) {
				Py_XDECREF(v);
				Py_DECREF(o);
				return NULL;
			}
			Py_DECREF(v);
		}
		return o;
	default:	/* array, list */
		if ((o = PyList_New(n)) == NULL)
			return NULL;
		for (int i = 0; i < n; i++) {
			if ((v = py_value(config_setting_get_elem(s,
			    (unsigned)i))) == NULL) {
				Py_DECREF(o);
				return NULL;
			}
			PyList_SET_ITEM(o, i, v);
		}
		return o;
	}
}

static double
py_number(const config_setting_t *s, double dflt)
{
	if (s == NULL)
		return dflt;
	if (config_setting_type(s) == CONFIG_TYPE_FLOAT)
		return config_setting_get_float(s);
	return (double)config_setting_get_int64(s);
}

static const char *
py_string(const config_setting_t *g, const char *name, const char *dflt)
{
	const config_setting_t *s = py_member(g, name);

	if (s == NULL || config_setting_type(s) != CONFIG_TYPE_STRING)
		return dflt;
	return config_setting_get_string(s);
}

/* Checks options' keys and types; fills paths (a list of str). */
static int
py_options(const config_setting_t *opts, const char **module,
    const char **cls, PyObject *paths)
{
	const config_setting_t	*s, *p;
	int			 bad = 0;

	for (int i = 0; i < config_setting_length(opts); i++) {
		const char *k;

		s = config_setting_get_elem(opts, (unsigned)i);
		k = config_setting_name(s);
		if (strcmp(k, "path") != 0 && strcmp(k, "module") != 0 &&
		    strcmp(k, "class") != 0 && strcmp(k, "settings") != 0) {
			ssd_option_error(s, "python: unknown option \"%s\" "
			    "(path, module, class, settings)", k);
			bad = 1;
		}
	}
	*module = NULL;
	*cls = NULL;
	if ((s = py_member(opts, "module")) == NULL ||
	    config_setting_type(s) != CONFIG_TYPE_STRING ||
	    *(*module = config_setting_get_string(s)) == '\0') {
		ssd_option_error(s != NULL ? s : opts, "python: options.module "
		    "must be a module name (a string)");
		bad = 1;
	}
	if ((s = py_member(opts, "class")) == NULL ||
	    config_setting_type(s) != CONFIG_TYPE_STRING ||
	    *(*cls = config_setting_get_string(s)) == '\0') {
		ssd_option_error(s != NULL ? s : opts, "python: options.class "
		    "must be a class name (a string)");
		bad = 1;
	}
	if ((s = py_member(opts, "settings")) != NULL &&
	    config_setting_type(s) != CONFIG_TYPE_GROUP) {
		ssd_option_error(s, "python: options.settings must be a "
		    "group");
		bad = 1;
	}
	if ((s = py_member(opts, "path")) != NULL) {
		bool one = config_setting_type(s) == CONFIG_TYPE_STRING;
		int n = one ? 1 : config_setting_length(s);

		if (!one && config_setting_type(s) != CONFIG_TYPE_ARRAY)
			n = -1;
		for (int i = 0; i < n; i++) {
			const char *d;
			PyObject *o;

			p = one ? s : config_setting_get_elem(s, (unsigned)i);
			if (config_setting_type(p) != CONFIG_TYPE_STRING ||
			    (d = config_setting_get_string(p))[0] != '/') {
				n = -1;
				break;
			}
			if ((o = PyUnicode_DecodeFSDefault(d)) == NULL ||
			    PyList_Append(paths, o) == -1) {
				Py_XDECREF(o);
				return -1;
			}
			Py_DECREF(o);
		}
		if (n == -1) {
			ssd_option_error(s, "python: options.path must be an "
			    "absolute directory, or an array of them");
			bad = 1;
		}
	}
	return bad ? -1 : 0;
}

/* self.server: server_address, socket_type, address_family, timeout,
 * listener, settings. */
static PyObject *
py_server(const config_setting_t *l, const config_setting_t *opts,
    struct pyinst *pi)
{
	const char	*type = py_string(l, "type", "stream");
	const char	*addr = py_string(l, "address", "");
	const char	*fam = py_string(l, "family", NULL);
	const config_setting_t *s;
	PyObject	*settings, *saddr, *srv = NULL, *kw = NULL, *args;
	long long	 port = 0;
	int		 family;

	if ((s = py_member(l, "port")) != NULL)
		port = config_setting_get_int64(s);
	pi->pi_port0 = port == 0;
	if (fam != NULL)
		family = strcmp(fam, "unix") == 0 ? AF_UNIX :
		    strcmp(fam, "inet6") == 0 ? AF_INET6 : AF_INET;
	else
		family = addr[0] == '/' || addr[0] == '@' ? AF_UNIX :
		    strchr(addr, ':') != NULL ? AF_INET6 : AF_INET;
	if (strcmp(addr, "*") == 0)
		addr = family == AF_INET6 ? "::" : "0.0.0.0";
	if ((s = py_member(opts, "settings")) != NULL)
		settings = py_value(s);
	else
		settings = PyDict_New();
	if (family == AF_UNIX)
		saddr = PyUnicode_FromString(addr);
	else
		saddr = Py_BuildValue("(sL)", addr, port);
	if (settings != NULL && saddr != NULL)
		kw = Py_BuildValue("{sOsisisOsssLsO}", "server_address", saddr,
		    "socket_type", strcmp(type, "dgram") == 0 ? SOCK_DGRAM :
		    SOCK_STREAM, "address_family", family, "timeout",
		    pi->pi_timeout, "listener", py_string(l, "name", ""),
		    "max_packet_size", (long long)pi->pi_maxpacket,
		    "settings", settings);
	if (kw != NULL && (args = PyTuple_New(0)) != NULL) {
		PyObject *cls = PyDict_GetItemString(py_boot, "Server");

		srv = cls != NULL ? PyObject_Call(cls, args, kw) : NULL;
		Py_DECREF(args);
	}
	Py_XDECREF(kw);
	Py_XDECREF(saddr);
	Py_XDECREF(settings);
	return srv;
}

static void
py_inst_free(struct pyinst *pi)
{
	Py_XDECREF(pi->pi_cls);
	Py_XDECREF(pi->pi_server);
	Py_XDECREF(pi->pi_timeout);
	free(pi->pi_qualname);
	free(pi);
}

/* The Python error now set, as one line for ssd_option_error. */
static char *
py_describe(void)
{
	PyObject	*t, *v, *tb, *f, *r = NULL;
	char		*s = NULL;
	const char	*u;

	PyErr_Fetch(&t, &v, &tb);
	PyErr_NormalizeException(&t, &v, &tb);
	if (v != NULL && tb != NULL)
		PyException_SetTraceback(v, tb);
	if (v != NULL && (f = PyDict_GetItemString(py_boot, "describe")) !=
	    NULL)
		r = PyObject_CallOneArg(f, v);
	if (r != NULL && (u = PyUnicode_AsUTF8(r)) != NULL)
		s = strdup(u);
	PyErr_Clear();
	Py_XDECREF(r);
	Py_XDECREF(t);
	Py_XDECREF(v);
	Py_XDECREF(tb);
	return s;
}

static int
py_init(void **instance, const config_setting_t *opts)
{
	const config_setting_t	*l, *s;
	struct pyinst		*pi = NULL;
	PyGILState_STATE	 gs;
	PyObject		*paths = NULL, *mod = NULL, *cls = NULL;
	PyObject		*load;
	const char		*module, *clsname, *model, *msg;
	char			*why;
	int			 rc = -1;

	if (opts == NULL) {
		ssd_option_error(NULL, "python: needs options (module, class; "
		    "path, settings)");
		return -1;
	}
	l = config_setting_parent(opts);
	s = py_member(l, "concurrency");
	model = s != NULL && config_setting_type(s) == CONFIG_TYPE_STRING ?
	    config_setting_get_string(s) : "event";
	if (strcmp(model, "event") == 0) {
		ssd_option_error(s != NULL ? s : opts, "python: concurrency "
		    "\"event\" cannot run Python handlers: use \"thread\", "
		    "\"fork\" or \"sync\"");
		return -1;
	}
	if (py_start(&gs, &msg) == -1) {
		ssd_option_error(opts, "python: %s", msg);
		return -1;
	}
	if ((paths = PyList_New(0)) == NULL ||
	    py_options(opts, &module, &clsname, paths) == -1)
		goto fail;
	pi = calloc(1, sizeof(*pi));
	if (pi == NULL)
		goto fail;
	s = py_member(l, "max_packet_size");
	pi->pi_maxpacket = s != NULL ? (size_t)config_setting_get_int64(s) :
	    8192;
	if (py_number(py_member(l, "timeout"), 60.0) > 0)
		pi->pi_timeout = PyFloat_FromDouble(py_number(py_member(l,
		    "timeout"), 60.0));
	else {
		Py_INCREF(Py_None);
		pi->pi_timeout = Py_None;
	}
	if ((load = PyDict_GetItemString(py_boot, "load")) == NULL ||
	    (mod = PyObject_CallFunction(load, "sO", module, paths)) == NULL) {
		why = py_describe();
		ssd_option_error(opts, "python: cannot import module \"%s\": "
		    "%s", module, why != NULL ? why : "?");
		free(why);
		goto fail;
	}
	cls = PyObject_CallFunction(PyDict_GetItemString(py_boot,
	    "check_class"), "Os", mod, clsname);
	if (cls == NULL || PyUnicode_Check(cls)) {
		why = cls != NULL ? strdup(PyUnicode_AsUTF8(cls)) :
		    py_describe();
		ssd_option_error(opts, "python: %s", why != NULL ? why : "?");
		free(why);
		goto fail;
	}
	pi->pi_cls = cls;
	cls = NULL;
	if (asprintf(&pi->pi_qualname, "%s.%s", module, clsname) == -1) {
		pi->pi_qualname = NULL;
		goto fail;
	}
	if ((pi->pi_server = py_server(l, opts, pi)) == NULL) {
		why = py_describe();
		ssd_option_error(opts, "python: %s", why != NULL ? why : "?");
		free(why);
		goto fail;
	}
	*instance = pi;
	pi = NULL;
	rc = 0;
fail:
	if (PyErr_Occurred())
		PyErr_Print();
	if (pi != NULL)
		py_inst_free(pi);
	Py_XDECREF(cls);
	Py_XDECREF(mod);
	Py_XDECREF(paths);
	PyGILState_Release(gs);
	return rc;
}

static void
py_fini(void *instance)
{
	PyGILState_STATE gs;

	if (instance == NULL)
		return;
	gs = PyGILState_Ensure();
	py_inst_free(instance);
	PyGILState_Release(gs);
}

/* ------------------------------------------------------------------ */
/* Requests. */

/* Logs the exception now set as handle_error would, and clears it. */
static void
py_log_exception(struct ssd_request *rq, const struct pyinst *pi)
{
	PyObject	*t, *v, *tb, *lines = NULL, *quiet;
	const char	*s;

	PyErr_Fetch(&t, &v, &tb);
	PyErr_NormalizeException(&t, &v, &tb);
	if (v == NULL)
		goto done;
	if (tb != NULL)
		PyException_SetTraceback(v, tb);
	/* A timeout, a reset or the stop: the daemon says which. */
	quiet = PyDict_GetItemString(py_boot, "QUIET");
	if (quiet != NULL && PyObject_IsInstance(v, quiet) == 1) {
		PyObject *r = PyObject_Str(v);

		ssd_log(rq, LOG_INFO, "python: %s: %s: %s", pi->pi_qualname,
		    Py_TYPE(v)->tp_name, r != NULL &&
		    (s = PyUnicode_AsUTF8(r)) != NULL ? s : "?");
		Py_XDECREF(r);
		goto done;
	}
	ssd_log(rq, LOG_ERR, "python: exception in %s during the request "
	    "(handle_error):", pi->pi_qualname);
	lines = PyObject_CallOneArg(PyDict_GetItemString(py_boot, "lines"),
	    v);
	if (lines != NULL && PyList_Check(lines))
		for (Py_ssize_t i = 0; i < PyList_GET_SIZE(lines); i++)
			if ((s = PyUnicode_AsUTF8(PyList_GET_ITEM(lines,
			    i))) != NULL)
				ssd_log(rq, LOG_ERR, "%s", s);
done:
	PyErr_Clear();
	Py_XDECREF(lines);
	Py_XDECREF(t);
	Py_XDECREF(v);
	Py_XDECREF(tb);
}

static struct pyreq *
py_req_new(struct ssd_request *rq, struct pyinst *pi, bool dgram)
{
	const struct sockaddr	*sa;
	struct pyreq		*r;
	socklen_t		 len = 0;

	if ((r = PyObject_New(struct pyreq, py_reqtype)) == NULL)
		return NULL;
	r->r_rq = rq;
	r->r_io_refs = 0;
	r->r_busy = 0;
	r->r_closed = false;
	r->r_dgram = dgram;
	r->r_tls = ssd_env(rq, "HTTPS") != NULL;
	Py_INCREF(pi->pi_timeout);
	r->r_timeout = pi->pi_timeout;
	sa = ssd_peer_addr(rq, &len);
	if ((r->r_peer = py_sockaddr(sa, len)) == NULL) {
		Py_DECREF(r);
		return NULL;
	}
	return r;
}

/* The first request on a port = 0 listener names the port bound. */
static void
py_fill_port(struct ssd_request *rq, struct pyinst *pi)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);
	PyObject		*a, *old, *host, *na;

	pi->pi_port0 = 0;
	if (getsockname(ssd_fd(rq), (struct sockaddr *)&ss, &len) == -1 ||
	    (ss.ss_family != AF_INET && ss.ss_family != AF_INET6) ||
	    (a = py_sockaddr((struct sockaddr *)&ss, len)) == NULL)
		return;
	old = PyObject_GetAttrString(pi->pi_server, "server_address");
	if (old != NULL && PyTuple_Check(old) && PyTuple_GET_SIZE(old) >= 1) {
		host = PyTuple_GET_ITEM(old, 0);
		na = Py_BuildValue("(OO)", host, PyTuple_GET_ITEM(a, 1));
		if (na != NULL)
			PyObject_SetAttrString(pi->pi_server,
			    "server_address", na);
		Py_XDECREF(na);
	}
	PyErr_Clear();
	Py_XDECREF(old);
	Py_DECREF(a);
}

static int
py_handle(struct ssd_request *rq)
{
	struct pyinst		*pi = ssd_instance(rq);
	bool			 dgram = ssd_socktype(rq) == SOCK_DGRAM;
	struct pyreq		*sock;
	PyGILState_STATE	 gs;
	PyObject		*req = NULL, *data = NULL, *h = NULL;
	int			 rc = -1;

	gs = PyGILState_Ensure();
	if (pi->pi_port0)
		py_fill_port(rq, pi);
	if ((sock = py_req_new(rq, pi, dgram)) == NULL)
		goto fail;
	if (dgram) {
		Py_ssize_t	 n, got = 0, cap = (Py_ssize_t)pi->pi_maxpacket;

		if ((data = PyBytes_FromStringAndSize(NULL, cap)) == NULL)
			goto fail;
		while (got < cap && (n = ssd_read(rq,
		    PyBytes_AS_STRING(data) + got, (size_t)(cap - got))) > 0)
			got += n;
		if (_PyBytes_Resize(&data, got) == -1 ||
		    (req = PyTuple_Pack(2, data, (PyObject *)sock)) == NULL)
			goto fail;
	} else {
		req = (PyObject *)sock;
		Py_INCREF(req);
	}
	h = PyObject_CallFunctionObjArgs(pi->pi_cls, req, sock->r_peer,
	    pi->pi_server, NULL);
	rc = h != NULL ? 0 : -1;
fail:
	if (PyErr_Occurred())
		py_log_exception(rq, pi);
	/* The request ends: a thread of the handler's own still inside
	 * ssd_* is woken, and the object refuses I/O from now on. */
	if (sock != NULL) {
		while (sock->r_busy > 0) {
			if (!dgram)
				shutdown(ssd_fd(rq), SHUT_RDWR);
			Py_BEGIN_ALLOW_THREADS
			poll(NULL, 0, 10);
			Py_END_ALLOW_THREADS
		}
		sock->r_rq = NULL;
	}
	Py_XDECREF(h);
	Py_XDECREF(req);
	Py_XDECREF(data);
	Py_XDECREF((PyObject *)sock);
	PyGILState_Release(gs);
	return rc;
}

SSD_HANDLER(python) = {
	.abi = SSD_ABI_VERSION,
	.name = "python",
	.description = "a socketserver request handler class, in Python",
	.init = py_init,
	.fini = py_fini,
	.handle = py_handle,
};
