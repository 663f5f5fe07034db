#include "atrctl.h"
